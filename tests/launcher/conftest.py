"""Fixtures of the launcher tests."""

from __future__ import annotations

import pytest

from tests.support import slurm


@pytest.fixture(scope="session")
def slurm_cluster():
    """The slurm.conf of a real one-node Slurm (tests/support/slurm.py)."""
    yield from slurm.cluster()
