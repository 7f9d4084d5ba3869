"""The adversarial layer: recipes and names as a careless or hostile user would write them.
Whatever a test's run left running (on old code, or after a failure) is killed after the test."""

from __future__ import annotations

import pytest

from tests.support import hostile


@pytest.fixture(autouse=True)
def _kill_leftovers():
    yield
    while hostile._TOKENS:
        hostile.kill_all(hostile._TOKENS.pop())


ODD_TARGETS = ["ACTB\x1b[31m", "GAPDH\nforged"]
"""Codebook targets that would recolour the terminal and forge a line."""


@pytest.fixture(scope="session")
def two_fovs(tmp_path_factory):
    """A small two-FOV demo experiment (A1, A2) whose targets hold control characters, written once."""
    from starfish_batch.demo.experiment import write_demo_experiment

    return write_demo_experiment(tmp_path_factory.mktemp("exp"), n_fovs=2, shape=(64, 64), n_spots=4, seed=1,
                                 targets=ODD_TARGETS)
