"""The lab node image: lab/Dockerfile on debian:bookworm, or on a debootstrap import of it."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import docker
from docker.errors import APIError, BuildError, ImageNotFound

from slakit.errors import SlakitError
from slakit.lab import LABEL

PULLED_BASE = "debian:bookworm"
IMPORTED_BASE = "slakit/lab-base:bookworm"
NODE_IMAGE = "slakit/lab-node:latest"
BUILD_CONTEXT = Path("lab")
SUITE = "bookworm"


def _apt_mirror(sources: tuple[Path, ...] = ()) -> str:
    """The first Debian mirror in the host's apt sources that serves the base suite."""
    files = sources or (
        Path("/etc/apt/sources.list"),
        *sorted(Path("/etc/apt/sources.list.d").glob("*.list")),
        *sorted(Path("/etc/apt/sources.list.d").glob("*.sources")),
    )
    for path in files:
        text = path.read_text() if path.is_file() else ""
        for line in text.splitlines():  # one-line style: deb [opts] URI SUITE COMPONENTS...
            parts = line.split()
            uris = [i for i, p in enumerate(parts) if "://" in p]
            if parts[:1] == ["deb"] and uris and parts[uris[0] + 1 : uris[0] + 2] == [SUITE]:
                return parts[uris[0]]
        for stanza in re.split(r"\n\s*\n", text):  # deb822 style
            fields = dict(re.findall(r"^(\w[\w-]*):\s*(.+)$", stanza, re.M))
            suites = fields.get("Suites", "").split()
            if SUITE in suites and "deb" in fields.get("Types", "").split():
                uri = fields.get("URIs", "").split()[0] if fields.get("URIs") else ""
                if uri and "security" not in uri:
                    return uri
    raise SlakitError(f"no Debian mirror for {SUITE} in the host's apt sources (/etc/apt)")


def _has(engine: docker.DockerClient, name: str) -> bool:
    try:
        engine.images.get(name)
        return True
    except ImageNotFound:
        return False


def _debootstrap_base(engine: docker.DockerClient) -> None:
    mirror = _apt_mirror()
    with tempfile.TemporaryDirectory(prefix="slakit-rootfs-") as tmp:
        rootfs, tarball = Path(tmp) / "rootfs", Path(tmp) / "rootfs.tar"
        run = subprocess.run(
            ["debootstrap", "--variant=minbase", SUITE, str(rootfs), mirror],
            capture_output=True,
            text=True,
            check=False,
        )
        if run.returncode != 0:
            last = (run.stderr or run.stdout).strip().splitlines()[-1:] or ["no output"]
            raise SlakitError(f"debootstrap {SUITE} from {mirror} failed: {last[0]}")
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tarball), "."], check=True)
        repo, tag = IMPORTED_BASE.split(":")
        engine.api.import_image_from_file(
            str(tarball), repository=repo, tag=tag, changes=[f"LABEL {LABEL}=base"]
        )


def base_image(engine: docker.DockerClient) -> str:
    """debian:bookworm if present or pullable, else an imported debootstrap of it."""
    for name in (PULLED_BASE, IMPORTED_BASE):
        if _has(engine, name):
            return name
    try:
        engine.images.pull(PULLED_BASE)
        return PULLED_BASE
    except APIError:
        _debootstrap_base(engine)
        return IMPORTED_BASE


def build_node_image(engine: docker.DockerClient) -> str:
    """Build (or refresh from the build cache) the node image; returns its id."""
    base = base_image(engine)
    try:
        image, _ = engine.images.build(
            path=str(BUILD_CONTEXT),
            tag=NODE_IMAGE,
            buildargs={"BASE_IMAGE": base},
            labels={LABEL: "node"},
            rm=True,
            forcerm=True,
        )
    except BuildError as err:
        lines = [c.get("stream", c.get("error", "")).strip() for c in err.build_log]
        tail = next((ln for ln in reversed(lines) if ln), err.msg)
        raise SlakitError(f"{BUILD_CONTEXT}/Dockerfile: build failed: {tail}") from None
    return str(image.id)


def node_image(engine: docker.DockerClient) -> str:
    """The node image id, built when missing."""
    try:
        return str(engine.images.get(NODE_IMAGE).id)
    except ImageNotFound:
        return build_node_image(engine)
