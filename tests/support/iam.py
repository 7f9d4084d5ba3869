"""IAM policies evaluated, not read: the npm package ``@cloud-copilot/iam-simulate``.

moto enforces IAM only with ``INITIAL_NO_AUTH_ACTION_COUNT``, and its evaluator
(moto/iam/access_control.py, 5.2) matches resources by turning ``*`` into a regex and has no
policy variables (``${aws:userid}``) and no conditions: it cannot evaluate the per-scientist
scope. iam-simulate (AGPL-3.0; a test-time tool, never shipped) evaluates identity policies
with policy variables, every condition operator and explicit denies. It is installed from the
npm registry, once, into ``.venv/iam-simulate`` (``make clean`` removes it); where Node or npm
is missing, or the registry cannot be reached, the tests that need it skip, saying why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from tests.support import REPO_ROOT

PACKAGE = "@cloud-copilot/iam-simulate@0.1.173"
INSTALL_DIR = REPO_ROOT / ".venv" / "iam-simulate"
SCRIPT = Path(__file__).with_name("iam_simulate") / "simulate.cjs"


def install() -> str | None:
    """Install the simulator if needed; returns why it cannot be used, or None."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node and npm are needed to evaluate IAM policies (@cloud-copilot/iam-simulate)"
    if (INSTALL_DIR / "node_modules" / "@cloud-copilot" / "iam-simulate" / "package.json").exists():
        return None
    INSTALL_DIR.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--no-save", "--prefix", str(INSTALL_DIR),
                           PACKAGE], capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        return f"npm install {PACKAGE} failed: {done.stderr.strip().splitlines()[-1:] or done.returncode}"
    return None


def simulate(policies: dict[str, dict], requests: list[dict]) -> list:
    """The answer of IAM to each request (``Allowed``, ``ImplicitlyDenied``, ``ExplicitlyDenied``)
    under the identity ``policies`` (name -> document)."""
    job = {"identityPolicies": [{"name": n, "policy": p} for n, p in policies.items()], "requests": requests}
    done = subprocess.run(["node", str(SCRIPT)], input=json.dumps(job), capture_output=True, text=True,
                          timeout=120, check=True, env={**os.environ, "NODE_PATH": str(INSTALL_DIR / "node_modules")})
    return json.loads(done.stdout)
