"""Fixtures of the Terraform tests (helpers are in tests/support/terraform.py)."""

from __future__ import annotations

import shutil

import pytest

from tests.support import AWS_PROVIDER_MIRROR
from tests.support.moto import MotoServer


@pytest.fixture(scope="session")
def terraform_available() -> str:
    """Skip (with the reason) where terraform or the provider mirror is missing."""
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("terraform is not installed (not on PATH): Terraform tests skipped")
    if not AWS_PROVIDER_MIRROR.is_dir():
        pytest.skip(
            f"the hashicorp/aws provider mirror {AWS_PROVIDER_MIRROR} is missing "
            "(set TF_PLUGIN_DIR): Terraform tests skipped"
        )
    return binary


@pytest.fixture(scope="session")
def moto_available() -> None:
    try:
        import boto3  # noqa: F401
    except ImportError:
        pytest.skip("boto3 is not installed: moto-backed Terraform tests skipped")
    if MotoServer.command() is None:
        pytest.skip("moto_server (PyPI moto[server]) is not installed: moto-backed Terraform tests skipped")


@pytest.fixture(scope="session")
def moto_server(moto_available, tmp_path_factory):
    """A moto server for the session; call .reset() between tests that share it."""
    server = MotoServer(tmp_path_factory.mktemp("moto")).start()
    try:
        yield server
    finally:
        server.stop()
