"""Fixtures of the container e2e tests (the ``e2e`` marker: `make e2e`); see tests/support/containers.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.containers import (
    TARGETS,
    PodmanService,
    build_base_image,
    build_worker_images,
    image_exists,
    image_name,
    podman_available,
    state_dir,
)
from tests.support.moto import MotoServer


@pytest.fixture(scope="session")
def e2e_state() -> Path:
    """The podman state dir, with both worker images built (builds what is missing).

    Opt-in: tests under tests/e2e carry the ``e2e`` marker, which `make test` deselects
    (building the images takes minutes and GBs); `make e2e` runs them. E2E_BUILD=0 uses what
    `make e2e-setup` built, or skips.
    """
    reason = podman_available()
    if reason:
        pytest.skip(reason)
    state = state_dir()
    if os.environ.get("E2E_BUILD", "1") == "0":
        missing = [t for t in TARGETS if not image_exists(state, image_name(t))]
        if missing:
            pytest.skip(f"images {missing} not built in {state}: run `make e2e-setup`")
    else:
        build_base_image(state)
        build_worker_images(state)
    return state


@pytest.fixture(scope="session")
def podman_service(e2e_state: Path) -> Iterator[PodmanService]:
    with PodmanService(e2e_state) as service:
        yield service


@pytest.fixture(scope="session")
def moto_batch_server(e2e_state: Path, podman_service: PodmanService) -> Iterator[MotoServer]:
    """A moto server whose Batch runs containers in podman (state is reset per test by users)."""
    with MotoServer(e2e_state, docker_host=podman_service.docker_host, pid_file=e2e_state / "moto.pid") as server:
        yield server
