"""Fixtures of the Terraform tests (helpers are in terraform_helpers.py)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from terraform_helpers import AWS_PROVIDER_MIRROR, MotoServer  # noqa: E402


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
    log = tmp_path_factory.mktemp("moto") / "moto_server.log"
    server = MotoServer().start(log)
    try:
        yield server
    finally:
        server.stop()
