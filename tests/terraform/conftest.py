"""Fixtures of the Terraform tests (helpers are in tests/support/terraform.py)."""

from __future__ import annotations

import shutil

import pytest

from tests.support import AWS_PROVIDER_MIRROR


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
