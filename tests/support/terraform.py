"""Terraform in the tests (fixtures are in tests/terraform/conftest.py).

Nothing here reaches AWS or a registry: Terraform runs on a temporary copy of
the module, initialised from the provider mirror (``-plugin-dir``), and the
apply tests point the provider at a moto server on 127.0.0.1 with dummy
credentials. The module has no provider block of its own: a root apply gets a
``providers.tf`` written in the copy (:func:`point_at_moto`), and a child call
gets a caller directory with an aliased provider (:func:`write_caller`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support import AWS_PROVIDER_MIRROR, PLUGIN_DIR, REPO_ROOT  # noqa: F401 - re-exported

EXAMPLES_DIR = REPO_ROOT / "examples"
# Root modules that call the module (source = "../.."), one per compute type.
EXAMPLES = {"EC2": "ec2", "SPOT": "spot", "FARGATE": "fargate"}
# Every example root module (the above, and private subnets with VPC endpoints).
ALL_EXAMPLES = (*EXAMPLES.values(), "private-subnets")

# Directories never copied nor scanned (virtualenvs, Terraform's own data, git).
EXCLUDED_DIRS = {".git", ".terraform", "node_modules", "__pycache__"}
MOTO_SERVICES = ("s3", "iam", "batch", "ec2", "ecr", "logs", "sts", "ecs", "ssm")
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
    """Copy the module (its *.tf, no override files) and the example root modules
    (examples/<name>/*.tf, which call it as ``../..``) into dest."""
    dest.mkdir(parents=True, exist_ok=True)
    for tf in REPO_ROOT.glob("*.tf"):
        if not tf.name.endswith("_override.tf"):
            shutil.copy2(tf, dest / tf.name)
    for name in ALL_EXAMPLES:
        (dest / "examples" / name).mkdir(parents=True, exist_ok=True)
        for tf in (EXAMPLES_DIR / name).glob("*.tf"):
            shutil.copy2(tf, dest / "examples" / name / tf.name)
    return dest


def module_at_commit(commit: str, dest: Path) -> Path | None:
    """The module's root *.tf files as they were at ``commit`` (read from git, the checkout
    untouched), in dest; None where that commit is not in this clone (a shallow clone) or git
    is missing."""
    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False)

    if shutil.which("git") is None or git("cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        return None
    listed = git("ls-tree", "--name-only", commit)
    assert listed.returncode == 0, listed.stderr
    dest.mkdir(parents=True, exist_ok=True)
    for name in listed.stdout.split():
        if name.endswith(".tf"):
            shown = git("show", f"{commit}:{name}")
            assert shown.returncode == 0, shown.stderr
            (dest / name).write_text(shown.stdout)
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


# What an apply against moto says when the AWS provider sent a create again because the emulator
# answered the first too late (a loaded machine): the first had succeeded, and moto, unlike the
# AWS APIs the provider retries safely, refuses the second. Seen: CreateJobQueue's "already
# exists", IAM's EntityAlreadyExists, AddRoleToInstanceProfile's quota of one role per profile.
RETRIED_CREATE = ("already exists", "EntityAlreadyExists",
                  "Cannot exceed quota for InstanceSessionsPerInstanceProfile")


def apply(work: Path, env: dict[str, str], args: list[str] | tuple[str, ...] = (), saved_plan: str | None = None,
          timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """``terraform apply ARGS`` (or of ``saved_plan``), and once more when it failed only on a
    create the provider retried (``RETRIED_CREATE``). That mends what the provider recorded as
    tainted (an instance profile whose role it added twice: recreated); a resource it never
    recorded (a job queue whose create answer came too late) fails again, as it would on AWS.
    The tests' second plan checks that the result converged. The first attempt's output is kept
    in ``.first_attempt`` and said on stderr."""
    first = ["apply", "-input=false", saved_plan] if saved_plan else ["apply", "-auto-approve", "-input=false", *args]
    done = run_terraform(first, work, env, timeout=timeout)
    said = done.stdout + done.stderr
    if done.returncode != 0 and any(sign in said for sign in RETRIED_CREATE):
        line = next(line for line in said.splitlines() if any(sign in line for sign in RETRIED_CREATE))
        print(f"terraform apply in {work}: a create retried by the provider ({line.strip()[:200]}): applying again",
              file=sys.stderr)
        again = run_terraform(["apply", "-auto-approve", "-input=false", *args], work, env, timeout=timeout)
        again.first_attempt = done
        return again
    return done


def terraform_init(work: Path, env: dict[str, str]) -> None:
    result = run_terraform(["init", "-input=false", "-backend=false", f"-plugin-dir={PLUGIN_DIR}"], work, env)
    assert result.returncode == 0, f"terraform init failed:\n{result.stdout}\n{result.stderr}"


################################################################################
# moto server
################################################################################


def moto_provider(url: str, alias: str | None = None, region: str = MOTO_REGION) -> str:
    """A ``provider "aws"`` block that talks to the moto server at ``url`` with dummy keys."""
    endpoints = "\n".join(f'    {s:<5} = "{url}"' for s in MOTO_SERVICES)
    alias_line = f'  alias                       = "{alias}"\n' if alias else ""
    return f"""provider "aws" {{
{alias_line}  region                      = "{region}"
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
"""


# moto quirk: it copies a launch template's own tags into its
# LaunchTemplateData.TagSpecifications, so every later plan would want to
# remove them. Real AWS does not; this only keeps the no-change plan honest.
# An override file of the module's own directory: it applies whether the
# module is the root or a child.
#
# moto 5.2 also leaves jobStateTimeLimitActions out of DescribeJobQueues, so
# every later plan would add them again: the tests read them from the plan
# (terraform show -json) instead of from moto.
MOTO_QUIRKS_OVERRIDE = """# Written by the tests only (moto quirks, see tests/support/terraform.py).
resource "aws_launch_template" "this" {
  lifecycle {
    ignore_changes = [tag_specifications]
  }
}

resource "aws_batch_job_queue" "this" {
  lifecycle {
    ignore_changes = [job_state_time_limit_action]
  }
}
"""


def point_at_moto(module_dir: Path, url: str) -> None:
    """Make a copy of the module a root module on moto: its provider in ``providers.tf`` (the
    module has none of its own) and the moto-quirk override."""
    (module_dir / "providers.tf").write_text("# Written by the tests only.\n" + moto_provider(url))
    (module_dir / "zz_moto_override.tf").write_text(MOTO_QUIRKS_OVERRIDE)


def hcl(value: Any) -> str:
    """A Terraform expression for a plain value (JSON literals are valid HCL; null too)."""
    return json.dumps(value)


def write_caller(caller_dir: Path, module_dir: Path, url: str, inputs: dict[str, Any],
                 outputs: tuple[str, ...]) -> None:
    """A platform team's stack on moto: an aliased provider, the module called with ``count``
    and ``providers = { aws = aws.lab }``, and ``outputs`` re-exported from ``module[0]``."""
    caller_dir.mkdir(parents=True, exist_ok=True)
    (module_dir / "zz_moto_override.tf").write_text(MOTO_QUIRKS_OVERRIDE)
    source = os.path.relpath(module_dir, caller_dir)
    args = "\n".join(f"  {name} = {hcl(value)}" for name, value in inputs.items())
    outs = "\n".join(
        f'output "{name}" {{\n  value = one(module.starfish_batch[*].{name})\n}}\n' for name in outputs)
    (caller_dir / "main.tf").write_text(f"""# Written by the tests only: the module as a child of another stack.
terraform {{
  required_providers {{
    aws = {{
      source = "hashicorp/aws"
    }}
  }}
}}

# The caller's default provider points nowhere useful: only the alias reaches moto.
provider "aws" {{
  region                      = "eu-west-3"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
}}

{moto_provider(url, alias="lab")}
variable "enabled" {{
  type    = bool
  default = true
}}

module "starfish_batch" {{
  source = "{source}"
  count  = var.enabled ? 1 : 0

  providers = {{
    aws = aws.lab
  }}

{args}
}}

{outs}""")
