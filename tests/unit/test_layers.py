"""The test layers mean what their names say: `make test-fast` (-m "not terraform and not e2e")
runs no Terraform, wherever a test that applies the module lives."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.support import REPO_ROOT
from tests.support.shell import user_env


def _imports_terraform_support(path) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "tests.support.terraform":
            return True
        if isinstance(node, ast.ImportFrom) and node.module == "tests.support" and any(
                alias.name == "terraform" for alias in node.names):
            return True
    return False


def test_test_fast_selects_no_test_that_runs_terraform():
    runs_terraform = {str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "tests").rglob("test_*.py")
                      if _imports_terraform_support(p)}
    assert "tests/launcher/test_batch_e2e.py" in runs_terraform  # outside tests/terraform too
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "--collect-only", "-p", "no:cacheprovider",
                           "-m", "not terraform and not e2e", "tests"], cwd=REPO_ROOT, capture_output=True,
                          text=True, env=user_env(), timeout=300)
    assert done.returncode == 0, done.stdout[-2000:]
    selected = {line.split("::")[0] for line in done.stdout.splitlines() if "::" in line}
    assert selected and sorted(selected & runs_terraform) == []


def test_no_test_imports_another_test_module():
    """Shared fixtures and helpers live in tests/support (or a conftest), never in a test module."""
    imports = {}
    for path in (REPO_ROOT / "tests").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
                     if isinstance(node, ast.ImportFrom) else
                     [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            found = [n for n in names if n.startswith("tests.") and n.rsplit(".", 1)[-1].startswith("test_")]
            if found:
                imports[str(path.relative_to(REPO_ROOT))] = found
    assert imports == {}
