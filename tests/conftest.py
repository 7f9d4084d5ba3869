"""Shared fixtures: dummy AWS credentials for every test, and in-process moto S3; and each test's
layer marker, from its folder (tests/<layer>/)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from starfish_batch.core import storage
from tests.support import REPO_ROOT

# Fixtures of the support layer, offered to every test by name: `aws` (moto's Batch, S3 and logs
# in process, and the module's outputs for them) and `moto_server` (one moto server process for the
# session, reset by the tests that share it).
pytest_plugins = ["tests.support.batch", "tests.support.moto"]


@pytest.fixture(autouse=True)
def _dummy_aws_env(monkeypatch):
    """No test ever sees real credentials or reaches a real AWS endpoint."""
    for name in list(os.environ):
        if name.startswith("AWS_") :
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    storage.s3_client.cache_clear()
    yield
    storage.s3_client.cache_clear()


@pytest.fixture
def moto_s3():
    """In-process moto; yields a boto3 S3 client. Buckets are created by the test."""
    import boto3  # lazy: boto3 ~1 s
    from moto import mock_aws  # lazy: moto ~0.6 s

    with mock_aws():
        storage.s3_client.cache_clear()
        yield boto3.client("s3", region_name="us-east-1")
        storage.s3_client.cache_clear()


LAYERS = ("unit", "workers", "launcher", "terraform", "e2e", "adversarial")


def pytest_configure(config):
    """The launcher remembers the runs it launched in a state folder (launcher/pins.py): the
    tests' own, never the user's home, shared by every test and the processes they start."""
    if "STARFISH_BATCH_STATE_DIR" not in os.environ:
        config._starfish_state = os.environ["STARFISH_BATCH_STATE_DIR"] = tempfile.mkdtemp(
            prefix="starfish-batch-test-state-")


def pytest_unconfigure(config):
    made = getattr(config, "_starfish_state", None)
    if made:
        shutil.rmtree(made, ignore_errors=True)
        os.environ.pop("STARFISH_BATCH_STATE_DIR", None)


def _uses_terraform(item) -> bool:
    """Whether the test's module runs Terraform through the support layer (tests/support/terraform.py)."""
    module = getattr(item, "module", None)
    return any(getattr(value, "__name__", None) == "tests.support.terraform"
               or getattr(value, "__module__", None) == "tests.support.terraform"
               for value in vars(module).values()) if module is not None else False


def pytest_collection_modifyitems(config, items):
    """Mark every test with its layer (declared in pyproject.toml), so that -m selects one.

    The e2e layer builds images for minutes: it runs only when ``-m`` names it (`make e2e`),
    never as part of another selection such as ``-m "not terraform"``.
    """
    e2e_asked = "e2e" in (config.getoption("markexpr") or "").replace("not e2e", "")
    for item in items:
        parts = Path(str(item.fspath)).relative_to(REPO_ROOT / "tests").parts
        if parts and parts[0] in LAYERS:
            item.add_marker(getattr(pytest.mark, parts[0]))
        if parts and parts[0] != "terraform" and _uses_terraform(item):
            item.add_marker(pytest.mark.terraform)  # so that -m "not terraform" (make test-fast) applies nothing
            if parts[0] == "e2e" and not e2e_asked:
                item.add_marker(pytest.mark.skip(reason="container e2e tests run with -m e2e (make e2e)"))
