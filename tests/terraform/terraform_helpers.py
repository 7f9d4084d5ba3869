"""Helpers of the Terraform tests (fixtures are in conftest.py).

Nothing here reaches AWS or a registry: Terraform runs on a temporary copy of
the module, initialised from the provider mirror (``-plugin-dir``), and the
apply tests point the provider at a moto server on 127.0.0.1 with dummy
credentials through an override file written only in that copy.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PLUGIN_DIR = Path(os.environ.get("TF_PLUGIN_DIR", "/opt/tf-plugins"))
AWS_PROVIDER_MIRROR = PLUGIN_DIR / "registry.terraform.io" / "hashicorp" / "aws"
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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


class MotoServer:
    """A moto server subprocess on 127.0.0.1 (stopped by its PID)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def command() -> list[str] | None:
        exe = Path(sys.executable).with_name("moto_server")
        if exe.exists():
            return [str(exe)]
        found = shutil.which("moto_server")
        return [found] if found else None

    def start(self, log: Path) -> MotoServer:
        cmd = self.command()
        assert cmd is not None, "moto_server not found"
        env = dict(os.environ, MOTO_IAM_LOAD_MANAGED_POLICIES="true")
        with open(log, "wb") as fh:
            self.proc = subprocess.Popen(
                [*cmd, "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited early, see {log}")
            try:
                urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1)  # noqa: S310 (loopback)
                break
            except OSError:
                time.sleep(0.2)
        else:
            self.stop()
            raise RuntimeError(f"moto_server did not answer on {self.url}")
        # Batch jobs must never start containers in these tests.
        self.post("/moto-api/config", {"batch": {"use_docker": False}})
        return self

    def post(self, path: str, body: dict | None = None) -> None:
        data = json.dumps(body or {}).encode()
        req = urllib.request.Request(f"{self.url}{path}", data=data, headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=10).read()  # noqa: S310 (loopback)

    def reset(self) -> None:
        self.post("/moto-api/reset")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def client(self, service: str):
        import boto3

        # A session per client: boto3's default session is not thread-safe.
        return boto3.session.Session().client(
            service,
            endpoint_url=self.url,
            region_name=MOTO_REGION,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    def provider_override(self) -> str:
        return provider_override(self.url)
