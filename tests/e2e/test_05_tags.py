"""Every tag README documents runs alone on the converged lab and changes nothing: on its
role's own playbook (README: "on site.yml or the role's playbook"), which skips the fact
gathering and play setup of the other layers (about 2 s of each of these runs); the
cross-role tags on site.yml."""

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


# The playbook of each role's tags (its tag, or its tag and `_` a part); tags of no role here
# (preflight, stack_checks) run on site.yml.
ROLE_PLAYBOOKS = {
    "host_tuning": "tuning.yml",
    "redis": "redis.yml",
    "app": "app.yml",
    "loadbalancer": "loadbalancer.yml",
    "node_exporter": "monitoring.yml",
    "monitoring": "monitoring.yml",
}


def playbook_of(tag: str) -> str:
    role = next((r for r in ROLE_PLAYBOOKS if tag == r or tag.startswith(f"{r}_")), None)
    return ROLE_PLAYBOOKS[role] if role else "site.yml"


@pytest.mark.parametrize("tag", documented_tags())
def test_tag_runs_alone_with_zero_changes(deployed, tag):
    playbook = playbook_of(tag)
    result = ansible.playbook(envs.resolve("lab"), playbook, tags=tag, quiet=True)
    assert result.returncode == 0, f"{playbook} --tags {tag}: {result.first_failure()}"
    assert result.changed == 0, f"{playbook} --tags {tag} changed: {result.changed_tasks}"
