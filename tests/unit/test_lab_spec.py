"""The lab inventory is checked before anything is created: one clear line per problem."""

from pathlib import Path

import pytest

from slakit.errors import SlakitError
from slakit.lab.image import _apt_mirror
from slakit.lab.spec import load_spec

GOOD = """
all:
  vars:
    slakit_lab: {network: test-lab, subnet: 172.29.7.0/24}
  children:
    app:
      hosts:
        app-1: {ansible_host: 172.29.7.21}
        app-2: {ansible_host: 172.29.7.22}
    lb:
      hosts:
        lb-1: {ansible_host: 172.29.7.10}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hosts.yml"
    path.write_text(text)
    return path


def test_reads_hosts_groups_and_network(tmp_path):
    spec = load_spec(write(tmp_path, GOOD))
    assert spec.network == "test-lab"
    assert str(spec.subnet) == "172.29.7.0/24"
    assert {(h.name, h.address, h.groups) for h in spec.hosts} == {
        ("app-1", "172.29.7.21", ("app",)),
        ("app-2", "172.29.7.22", ("app",)),
        ("lb-1", "172.29.7.10", ("lb",)),
    }
    assert spec.hosts[0].container_name == "slakit-lab-app-1"


def test_the_shipped_lab_inventory_is_valid():
    spec = load_spec(Path("inventories/lab/hosts.yml"))
    names = {h.name for h in spec.hosts}
    assert names == {"lb-1", "app-1", "app-2", "redis-1", "redis-2", "mon-1"}
    groups = {h.name: set(h.groups) for h in spec.hosts}
    assert groups["lb-1"] == {"lb", "sentinel"} and groups["redis-2"] == {"redis", "sentinel"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("172.29.7.22", "172.29.8.22"), "app-2: address 172.29.8.22 is outside the lab subnet"),
        (("172.29.7.22", "172.29.7.21"), "app-2: address 172.29.7.21 is already used by app-1"),
        (("172.29.7.22", "172.29.7.1"), "app-2: address 172.29.7.1 is outside the lab subnet"),
        (("app-2:", "App_2:"), "lab host name 'App_2' is not a valid hostname"),
        (("172.29.7.0/24", "not-a-net"), "subnet must be an IPv4 network"),
        (("{ansible_host: 172.29.7.10}", "{}"), "lab host lb-1 has no ansible_host"),
        (("    app:\n", "    app:\n  bad: [\n"), "not valid YAML"),
    ],
)
def test_bad_inventory_is_one_clear_line(tmp_path, change, message):
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(SlakitError) as err:
        load_spec(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_host_name_is_refused(tmp_path):
    spec = load_spec(write(tmp_path, GOOD))
    assert [h.name for h in spec.select(["lb-1"])] == ["lb-1"]
    with pytest.raises(SlakitError, match="no lab host named web-9"):
        spec.select(["lb-1", "web-9"])


def test_missing_inventory(tmp_path):
    with pytest.raises(SlakitError, match="lab inventory not found"):
        load_spec(tmp_path / "nope.yml")


def test_mirror_from_one_line_and_deb822_sources(tmp_path):
    one_line = tmp_path / "sources.list"
    one_line.write_text(
        "# comment\ndeb http://security.example/debian-security bookworm-security main\n"
        "deb [arch=amd64] http://mirror.example/debian bookworm main contrib\n"
    )
    assert _apt_mirror((one_line,)) == "http://mirror.example/debian"
    deb822 = tmp_path / "debian.sources"
    deb822.write_text(
        "Types: deb\nURIs: http://other.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n\nTypes: deb\nURIs: http://other.example/debian-security\n"
        "Suites: bookworm-security\n"
    )
    assert _apt_mirror((deb822,)) == "http://other.example/debian"
    with pytest.raises(SlakitError, match="no Debian mirror"):
        _apt_mirror((tmp_path / "missing.list",))
