"""Terraform in the tests (fixtures are in tests/terraform/conftest.py).

Nothing here reaches AWS or a registry: Terraform runs on a temporary copy of
the module, initialised from the provider mirror (``-plugin-dir``), and the
apply tests point the provider at a moto server on 127.0.0.1 with dummy
credentials through an override file written only in that copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.support import AWS_PROVIDER_MIRROR, PLUGIN_DIR, REPO_ROOT  # noqa: F401 - re-exported

EXAMPLES_DIR = REPO_ROOT / "examples" / "terraform"
EXAMPLES = {"EC2": "ec2.tfvars", "SPOT": "spot.tfvars", "FARGATE": "fargate.tfvars"}

# Directories never copied nor scanned (virtualenvs, Terraform's own data, git).
EXCLUDED_DIRS = {".git", ".terraform", "node_modules", "__pycache__"}
MOTO_SERVICES = ("s3", "iam", "batch", "ec2", "ecr", "logs", "sts", "ecs")
MOTO_REGION = "us-east-1"


def _excluded(path: Path) -> bool:
    return any(p in EXCLUDED_DIRS or p.startswith(".venv") for p in path.parts)


def terraform_files(root: Path = REPO_ROOT) -> list[Path]:
    """Every *.tf / *.tfvars file of the repo, relative to it (no virtualenvs)."""
    found = []
    for pattern in ("*.tf", "*.tfvars"):
        for path in root.rglob(pattern):
            rel = path.relative_to(root)
            if not _excluded(rel):
                found.append(rel)
    return sorted(found)


def copy_module(dest: Path) -> Path:
    """Copy the root module (its *.tf) and examples/terraform into dest."""
    dest.mkdir(parents=True, exist_ok=True)
    for tf in REPO_ROOT.glob("*.tf"):
        shutil.copy2(tf, dest / tf.name)
    if EXAMPLES_DIR.is_dir():
        shutil.copytree(
            EXAMPLES_DIR,
            dest / "examples" / "terraform",
            ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", ".terraform.lock.hcl"),
        )
    return dest


def terraform_env(work: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a Terraform run: its own data dir, no prompts, no real credentials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TF_VAR_", "TF_CLI_ARGS"))}
    env.update(
        TF_DATA_DIR=str(work / ".terraform-data"),
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
        CHECKPOINT_DISABLE="1",
        # Dummy credentials only: the provider is pointed at moto (or never
        # configured at all, for fmt/validate).
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION=MOTO_REGION,
        AWS_EC2_METADATA_DISABLED="true",
    )
    env.update(extra or {})
    return env


def run_terraform(
    args: list[str], cwd: Path, env: dict[str, str], timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["terraform", *args, "-no-color"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def terraform_init(work: Path, env: dict[str, str]) -> None:
    result = run_terraform(["init", "-input=false", "-backend=false", f"-plugin-dir={PLUGIN_DIR}"], work, env)
    assert result.returncode == 0, f"terraform init failed:\n{result.stdout}\n{result.stderr}"


################################################################################
# moto server
################################################################################


def provider_override(url: str) -> str:
    """A test-only provider block (merged over versions.tf's) that talks to the moto server at ``url``."""
    endpoints = "\n".join(f'    {s:<5} = "{url}"' for s in MOTO_SERVICES)
    return f"""# Written by tests/terraform only: points the provider at moto.
provider "aws" {{
  region                      = "{MOTO_REGION}"
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  s3_use_path_style           = true

  endpoints {{
{endpoints}
  }}
}}

# moto quirk: it copies a launch template's own tags into its
# LaunchTemplateData.TagSpecifications, so every later plan would want to
# remove them. Real AWS does not; this only keeps the no-change plan honest.
resource "aws_launch_template" "this" {{
  lifecycle {{
    ignore_changes = [tag_specifications]
  }}
}}
"""
