"""The one support layer of the tests: paths, ports, and loading a script under test.

``moto`` (one moto server helper), ``terraform`` (the module in a temporary copy, from the
provider mirror), ``containers`` (podman and the worker images) and ``workflow`` (a small
experiment, the launcher as a user runs it, table comparisons) build on it.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = REPO_ROOT / "scripts"
# The hashicorp/aws provider mirror: never download providers (ENVIRONMENT: -plugin-dir).
PLUGIN_DIR = Path(os.environ.get("TF_PLUGIN_DIR", "/opt/tf-plugins"))
AWS_PROVIDER_MIRROR = PLUGIN_DIR / "registry.terraform.io" / "hashicorp" / "aws"
DUMMY_AWS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (every server of the tests binds to loopback only)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_script(path: Path) -> ModuleType:
    """A script of ``scripts/`` (not a package) as a module, to test its functions."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
