"""Shared fixtures: dummy AWS credentials for every test, and in-process moto S3; and each test's
layer marker, from its folder (tests/<layer>/)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support import REPO_ROOT


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
    from starfish_batch import storage

    storage.s3_client.cache_clear()
    yield
    storage.s3_client.cache_clear()


@pytest.fixture
def moto_s3():
    """In-process moto; yields a boto3 S3 client. Buckets are created by the test."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        from starfish_batch import storage

        storage.s3_client.cache_clear()
        yield boto3.client("s3", region_name="us-east-1")
        storage.s3_client.cache_clear()


LAYERS = ("unit", "workers", "launcher", "terraform", "e2e", "adversarial")


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
            if parts[0] == "e2e" and not e2e_asked:
                item.add_marker(pytest.mark.skip(reason="container e2e tests run with -m e2e (make e2e)"))
