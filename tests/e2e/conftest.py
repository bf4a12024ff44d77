"""End-to-end tests run against the real lab: a Docker engine must be running."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from slakit.lab import engine
from slakit.lab.spec import load_spec
from tests.e2e.support import ROOT


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.lab)


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    return engine.client()


@pytest.fixture(scope="session")
def lab_spec():
    return load_spec(ROOT / "inventories/lab/hosts.yml")
