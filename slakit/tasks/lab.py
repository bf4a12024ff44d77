"""`invoke lab.*`: the lab of systemd containers that every environment-less run uses."""

from __future__ import annotations

from pathlib import Path

from invoke import Collection
from rich.console import Console
from rich.table import Table

from slakit.lab import engine as lab_engine
from slakit.lab import image, nodes
from slakit.lab.spec import DEFAULT_INVENTORY, extra_app_hosts, load_spec, write_size
from slakit.tasks import task

INVENTORY_HELP = f"lab inventory to read (default {DEFAULT_INVENTORY})"


@task
def engine(c):
    """Install docker.io and debootstrap if missing and start dockerd (Debian, as root)."""
    print(lab_engine.ensure_engine())


@task(help={"inventory": INVENTORY_HELP})
def build(c, inventory=str(DEFAULT_INVENTORY)):
    """Build the lab node image from lab/Dockerfile (base image pulled or debootstrapped)."""
    load_spec(Path(inventory))
    with lab_engine.engine_errors("lab.build"):
        image_id = image.build_node_image(lab_engine.client())
    print(f"node image {image.NODE_IMAGE}: {image_id[:19]}")


@task(
    help={
        "inventory": INVENTORY_HELP,
        "recreate": "remove the lab's containers first and start clean",
        "app_hosts": "app hosts in all (e.g. 14: a 16-host lab); the extra ones go to "
        "lab-size.yml beside the inventory (git-ignored). Default 0: the inventory's own, "
        "which removes extra hosts a sized lab.up added",
    }
)
def up(c, inventory=str(DEFAULT_INVENTORY), recreate=False, app_hosts=0):
    """Start the lab: one systemd container per inventory host; adopts what is already right."""
    path = Path(inventory)
    added = extra_app_hosts(load_spec(path, sized=False), int(app_hosts))
    write_size(path, added, int(app_hosts))
    spec = load_spec(path)
    with lab_engine.engine_errors("lab.up"):
        report = nodes.up(lab_engine.client(), spec, recreate=recreate)
    print(
        f"lab up: created {len(report.created)} {sorted(report.created)}, "
        f"adopted {len(report.adopted)} {sorted(report.adopted)}, "
        f"removed {len(report.removed)} {sorted(report.removed)}"
    )
    for host, state in report.system_state.items():
        print(f"  {host}: systemd {state}")


@task(help={"images": "also remove the lab's images (the next lab.up rebuilds them)"})
def down(c, images=False):
    """Remove the lab's containers, network and SSH key (only what carries the slakit label)."""
    with lab_engine.engine_errors("lab.down"):
        removed = nodes.down(lab_engine.client(), images=images)
    print(f"lab down: removed {len(removed)}" + "".join(f"\n  {r}" for r in removed))


@task(help={"inventory": INVENTORY_HELP})
def status(c, inventory=str(DEFAULT_INVENTORY)):
    """Table of lab hosts: address, container state, `systemctl is-system-running`."""
    rows = nodes.status(lab_engine.client(), load_spec(Path(inventory)))
    table = Table(title="slakit lab")
    for col in ("host", "address", "container", "state", "systemd"):
        table.add_column(col)
    for row in rows:
        table.add_row(row.name, row.address, row.container, row.state, row.system)
    Console().print(table)


ns = Collection("lab", engine, build, up, down, status)
