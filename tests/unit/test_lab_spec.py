"""The lab inventory is checked before anything is created: one clear line per problem."""

from pathlib import Path

import pytest

from slakit.errors import SlakitError
from slakit.lab.image import _apt_mirror
from slakit.lab.spec import extra_app_hosts, load_spec, size_file, write_size

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
    assert groups["lb-1"] == {"lb", "sentinel", "loadgen"} and groups["redis-2"] == {
        "redis",
        "sentinel",
    }
    assert groups["mon-1"] == {"monitoring", "loadgen"}


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


def test_app_hosts_are_added_after_the_last_app_host_skipping_used_addresses(tmp_path):
    path = write(
        tmp_path,
        GOOD.replace("lb-1: {ansible_host: 172.29.7.10}", "lb-1: {ansible_host: 172.29.7.24}"),
    )
    added = extra_app_hosts(load_spec(path, sized=False), 5)
    assert [(h.name, h.address, h.groups) for h in added] == [
        ("app-3", "172.29.7.23", ("app",)),
        ("app-4", "172.29.7.25", ("app",)),  # .24 is lb-1's
        ("app-5", "172.29.7.26", ("app",)),
    ]


def test_size_file_is_read_with_the_inventory_and_removed_at_the_own_size(tmp_path):
    path = write(tmp_path, GOOD)
    base = load_spec(path, sized=False)
    assert write_size(path, extra_app_hosts(base, 4), 4) == size_file(path)
    sized = load_spec(path)
    apps = sorted(h.name for h in sized.hosts if "app" in h.groups)
    assert apps == ["app-1", "app-2", "app-3", "app-4"]
    assert len(load_spec(path, sized=False).hosts) == 3
    # the file Ansible reads beside hosts.yml is an inventory of its own, and lints
    assert "172.29.7.24" in size_file(path).read_text()
    assert write_size(path, extra_app_hosts(base, 0), 0) is None
    assert not size_file(path).exists()
    assert len(load_spec(path).hosts) == 3


@pytest.mark.parametrize(("count", "message"), [(1, "has 2 app hosts of its own"), (-1, "has 2")])
def test_fewer_app_hosts_than_the_inventory_has_is_refused(tmp_path, count, message):
    with pytest.raises(SlakitError, match=message):
        extra_app_hosts(load_spec(write(tmp_path, GOOD), sized=False), count)


def test_a_full_subnet_is_one_clear_line(tmp_path):
    path = write(tmp_path, GOOD.replace("172.29.7.0/24", "172.29.7.0/27"))
    assert len(extra_app_hosts(load_spec(path, sized=False), 10)) == 8  # .23 .. .30
    full = r"no free address left in the lab subnet 172\.29\.7\.0/27"
    with pytest.raises(SlakitError, match=full):
        extra_app_hosts(load_spec(path, sized=False), 11)
