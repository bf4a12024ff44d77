"""Forks follow the inventory's size (slakit.ansible.forks_for)."""

from pathlib import Path

from slakit import ansible

HOSTS = """
all:
  children:
    app:
      hosts:
        app-1: {ansible_host: 192.0.2.21}
        app-2:
    lb:
      hosts:
        lb-1: {ansible_host: 192.0.2.10}
        app-1:
"""


def test_forks_are_the_host_count_and_follow_a_change(tmp_path):
    inv = tmp_path / "inv"
    inv.mkdir()
    (inv / "hosts.yml").write_text(HOSTS)
    assert ansible.forks_for(inv) == 3  # a host in two groups counts once
    more = "all:\n  children:\n    app:\n      hosts:\n        app-3:\n        app-4:\n"
    (inv / "more.yml").write_text(more)
    assert ansible.forks_for(inv) == 5


def test_forks_are_capped(tmp_path, monkeypatch):
    path = tmp_path / "hosts.yml"
    path.write_text(HOSTS)
    many = {"app": {"hosts": [f"app-{k}" for k in range(200)]}, "_meta": {"hostvars": {}}}
    monkeypatch.setattr(ansible, "list_inventory", lambda source: many)
    assert ansible.forks_for(path) == ansible.FORKS_MAX


def test_an_inventory_that_does_not_list_leaves_ansible_cfg_forks(tmp_path):
    path = tmp_path / "hosts.yml"
    path.write_text("all: [\n")
    assert ansible.forks_for(path) is None


def test_playbook_passes_forks_unless_given(tmp_path, monkeypatch):
    seen: list[list[str]] = []

    class Done:
        returncode = 0

        def __init__(self, cmd, **_):
            seen.append(cmd)

        def __enter__(self):
            return self

        def __exit__(self, *_):
            return False

        def communicate(self):
            return "", ""

    monkeypatch.setattr(ansible, "forks_for", lambda inventory: 7)
    monkeypatch.setattr(ansible.subprocess, "Popen", Done)
    env = ansible.Environment("t", Path(tmp_path))
    ansible.playbook(env, "site.yml", quiet=True)
    ansible.playbook(env, "site.yml", quiet=True, extra_args=("--forks", "2"))
    assert seen[0][-2:] == ["--forks", "7"]
    assert seen[1].count("--forks") == 1 and seen[1][-2:] == ["--forks", "2"]
