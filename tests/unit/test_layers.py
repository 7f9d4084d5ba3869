"""Layers that mean what their names say. The tests: `make test-fast` (-m "not terraform and not
e2e") runs no Terraform, wherever a test that applies the module lives. The package: a folder per
deployable (process_fov/, merge/, launcher/) over core/, which imports only itself; no image
reaches launcher/ or demo/ (each image is pruned to its entry point's closure by the same reader)."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import tomllib

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


# --- the package's layers: a folder per deployable over a shared core ------------------------

PACKAGE_DIR = REPO_ROOT / "workers" / "src" / "starfish_batch"
IMAGES = ("process-fov", "merge-batch-job")  # the console scripts each image runs


def _closure_tool():
    """workers/docker/closure.py: what the image build prunes each image to (one reader of imports)."""
    spec = importlib.util.spec_from_file_location("closure", REPO_ROOT / "workers" / "docker" / "closure.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _entry_module(script: str) -> str:
    scripts = tomllib.loads((REPO_ROOT / "workers" / "pyproject.toml").read_text())["project"]["scripts"]
    return scripts[script].split(":")[0]


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_core_imports_only_itself():
    closure = _closure_tool()
    known = closure.modules(PACKAGE_DIR)
    outside = {name: sorted(m for m in closure.imported(name, path, known) if _room(m) not in ("core", ""))
               for name, path in known.items() if _room(name) == "core"}
    assert len(outside) > 30  # every core module was read
    assert {name: found for name, found in outside.items() if found} == {}


def test_no_image_reaches_the_launcher_the_demo_or_the_other_job():
    closure = _closure_tool()
    rooms = {script: {_room(m) for m in closure.closure(PACKAGE_DIR, [_entry_module(script)])} for script in IMAGES}
    assert rooms["process-fov"] == {"", "core", "process_fov"}
    assert rooms["merge-batch-job"] == {"", "core", "merge"}


def test_the_launcher_does_not_import_the_demo():
    """demo/ serves tests, benchmarks and `make run`'s demo data; a scientist's installed launcher
    runs without it."""
    closure = _closure_tool()
    rooms = {_room(m) for m in closure.closure(PACKAGE_DIR, [_entry_module("starfish-workflow")])}
    assert "launcher" in rooms and "demo" not in rooms


def test_the_closure_counts_imports_inside_functions_and_prunes_the_rest(tmp_path):
    pkg = tmp_path / "pkg"
    for name, text in {"__init__.py": "", "entry.py": "def main():\n    from pkg.sub import late\n",
                       "sub/__init__.py": "", "sub/late.py": "import pkg.sub.deep as d\n",
                       "sub/deep.py": "", "other/__init__.py": "", "other/unused.py": "import pkg.entry\n"}.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(text)
    closure = _closure_tool()
    assert closure.closure(pkg, ["pkg.entry"]) == {"pkg", "pkg.entry", "pkg.sub", "pkg.sub.late", "pkg.sub.deep"}
    closure.prune(pkg, ["pkg.entry"])
    assert sorted(str(p.relative_to(pkg)) for p in pkg.rglob("*")) == [
        "__init__.py", "entry.py", "sub", "sub/__init__.py", "sub/deep.py", "sub/late.py"]


def _applies_terraform(path) -> bool:
    """Whether a test module runs `terraform apply`: the command's word, or the support layer's
    apply (tests.support.terraform.apply, tests.support.e2e_stack.apply_module)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and node.value == "apply":
            return True
        if isinstance(node, ast.ImportFrom) and any(
                (node.module, alias.name) in {("tests.support.terraform", "apply"),
                                              ("tests.support.e2e_stack", "apply_module")} for alias in node.names):
            return True
    return False


def _collected(*marks: str) -> set[str]:
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "--collect-only", "-p", "no:cacheprovider",
                           "-m", " and ".join(marks), "tests"], cwd=REPO_ROOT, capture_output=True,
                          text=True, env=user_env(), timeout=300)
    assert done.returncode == 0, done.stdout[-2000:]
    return {line.split("::")[0] for line in done.stdout.splitlines() if "::" in line}


def test_make_test_leaves_every_terraform_apply_to_make_test_slow():
    """`make test` (-m "not e2e and not slow") stays near 15 minutes: applying the module to moto
    is `make test-slow`'s, which CI runs after it."""
    applies = {str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "tests").rglob("test_*.py")
               if _applies_terraform(p) and "tests/e2e/" not in str(p) and p.resolve() != Path(__file__).resolve()}
    assert {"tests/launcher/test_batch_e2e.py", "tests/terraform/test_terraform_moto.py"} <= applies
    assert sorted(_collected("not e2e", "not slow") & applies) == []
    assert applies <= _collected("slow")
