"""Commands as a user types them in a shell, not as the `make test` that runs the tests sees them.

`make test` exports MAKEFLAGS/MAKELEVEL (and CI may add MFLAGS); a nested `make` would then print
"Entering directory" lines and read the parent's flags, so a pasted command behaves differently
under the suite than in a terminal. Every test that runs `make` or a printed command goes here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.support import REPO_ROOT


def user_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without what an enclosing `make` exported."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MAKE") and k != "MFLAGS"}
    return {**clean, **(extra or {})}


def typed(command: str, env: dict[str, str] | None = None, *, cwd: Path | str = REPO_ROOT,
          timeout: float = 900) -> subprocess.CompletedProcess:
    """``command`` typed in a shell at ``cwd`` (the repository's root, where the README says to)."""
    return subprocess.run(command, shell=True, cwd=cwd, env=user_env(env), capture_output=True,
                          text=True, timeout=timeout)


def make_dry_run(cwd: Path | str, *args: str) -> str:
    """The commands `make` would run (``-n``), without running them, one per line."""
    done = subprocess.run(["make", "-n", "--no-print-directory", *args], cwd=cwd, capture_output=True,
                          text=True, env=user_env(), timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def makefile_tree(tmp_path: Path) -> Path:
    """The Makefile in a scratch folder, with a virtualenv that looks built (make need not build it),
    so a dry run never touches the real checkout."""
    for name in ("Makefile", "mk"):
        src = REPO_ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    (tmp_path / "workers").mkdir()
    for name in ("pyproject.toml", "constraints.txt"):
        (tmp_path / "workers" / name).write_text("")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / ".installed").write_text("")
    return tmp_path
