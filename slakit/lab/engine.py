"""Reaching the Docker engine, and starting one on a Debian machine that has none."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
from docker.errors import DockerException

from slakit.errors import SlakitError

DOCKERD_LOG = Path("/var/log/slakit-dockerd.log")
DEBIAN_PACKAGES = ("docker.io", "debootstrap")


def client() -> docker.DockerClient:
    """A client for a running engine, or one line that says how to get one."""
    try:
        engine = docker.from_env(timeout=300)
        engine.ping()
    except DockerException as err:
        reason = str(err).splitlines()[0][:160]
        raise SlakitError(
            f"Docker engine not reachable ({reason}); "
            "run `invoke lab.engine` (Debian, as root) or start dockerd"
        ) from None
    return engine


@contextmanager
def engine_errors(doing: str) -> Iterator[None]:
    """Docker API failures become one line naming what the lab was doing."""
    try:
        yield
    except DockerException as err:
        explanation = getattr(err, "explanation", None) or str(err)
        raise SlakitError(f"{doing}: {str(explanation).splitlines()[0][:200]}") from None


def _has_systemd() -> bool:
    return Path("/run/systemd/system").is_dir()


def _wait_for_engine(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            docker.from_env(timeout=5).ping()
            return
        except DockerException:
            time.sleep(0.5)
    raise SlakitError(f"dockerd did not answer within {seconds:.0f} s; see {DOCKERD_LOG}")


def ensure_engine() -> str:
    """Install docker.io and debootstrap if missing, start dockerd if stopped. Returns a summary."""
    try:
        docker.from_env(timeout=5).ping()
        return "Docker engine already running"
    except DockerException:
        pass
    if os.geteuid() != 0:
        raise SlakitError("lab.engine installs packages and starts dockerd: run it as root")
    missing = [
        p
        for p, exe in zip(DEBIAN_PACKAGES, ("dockerd", "debootstrap"), strict=True)
        if not shutil.which(exe)
    ]
    if missing:
        if not shutil.which("apt-get"):
            raise SlakitError(f"{', '.join(missing)} missing and this is not a Debian machine")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)
    if _has_systemd():
        subprocess.run(["systemctl", "start", "docker"], check=True)
    else:
        with DOCKERD_LOG.open("ab") as log:
            subprocess.Popen(
                ["dockerd"],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
    _wait_for_engine(60)
    return f"Docker engine started (installed: {', '.join(missing) or 'nothing'})"
