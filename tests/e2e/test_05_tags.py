"""Every tag README documents runs alone on the converged lab and changes nothing."""

from __future__ import annotations

import re

import pytest

from slakit import ansible, envs
from tests.e2e.support import ROOT, run


def documented_tags() -> list[str]:
    """The first column of README's tag table."""
    text = (ROOT / "README.md").read_text()
    table = text.split("| tag | what runs |", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"^\| `([a-z_]+)` \|", table, re.M)


def test_the_readme_documents_the_tags_site_yml_has():
    """Every documented tag exists (a misspelled one would run nothing and change nothing)."""
    listing = run("ansible-playbook", "-i", "inventories/lab", "playbooks/site.yml", "--list-tags")
    known = set(
        re.findall(r"[\w-]+", " ".join(re.findall(r"TASK TAGS: \[(.*?)\]", listing.stdout)))
    )
    tags = documented_tags()
    assert "preflight" in tags and "host_tuning_sysctl" in tags and "app_config" in tags, tags
    assert not set(tags) - known, f"documented, not in site.yml: {sorted(set(tags) - known)}"


@pytest.mark.parametrize("tag", documented_tags())
def test_tag_runs_alone_with_zero_changes(deployed, tag):
    result = ansible.playbook(envs.resolve("lab"), "site.yml", tags=tag, quiet=True)
    assert result.returncode == 0, f"--tags {tag}: {result.first_failure()}"
    assert result.changed == 0, f"--tags {tag} changed: {result.changed_tasks}"
