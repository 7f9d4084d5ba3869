"""Recipes that misbehave (hang, exit, leave processes and threads, print without end), a fast
recipe that returns a real table, and a way to find every process a test run left behind.

Every process of a test's run (the launcher, its guardian, the workers, what the recipe starts)
inherits a marker in its environment (``TOKEN_VAR``), so a test finds them all by scanning
``/proc``, whoever their parent is now.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tests.support.workflow import LAUNCHER
from tests.support.workflow import launch as launch_workflow

FAST_TABLE = '''
def table(fov, codebook):
    """A real DecodedIntensityTable of three spots from the codebook's own codes, in no time."""
    import numpy as np
    from starfish import DecodedIntensityTable, IntensityTable
    from starfish.types import Features

    intensities = IntensityTable.synthetic_intensities(codebook, num_z=1, height=16, width=16, n_spots=3)
    targets = np.resize(np.asarray(codebook[Features.TARGET].values), 3)
    return DecodedIntensityTable.from_intensity_table(
        intensities.drop_vars(Features.TARGET, errors="ignore"), targets=(Features.AXIS, targets),
        distances=(Features.AXIS, np.zeros(3)), passes_threshold=(Features.AXIS, np.ones(3, dtype=bool)))
'''


TOKEN_VAR = "SFB_TEST_RUN_TOKEN"


def marker() -> str:
    """A token no other process on the machine has: give it to the launcher as ``{TOKEN_VAR: token}``."""
    return f"sfb-marker-{uuid.uuid4().hex}"


SPAWN = ("    import subprocess\n"
         "    subprocess.Popen(['sleep', '3600'], start_new_session=False)\n")
"""Recipe source that starts a child process and never waits for it."""


def processes_with(token: str) -> list[int]:
    """Pids whose environment or command line holds ``token`` (zombies hold neither)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            seen = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if token.encode() in seen:
            found.append(int(entry.name))
    return found


def wait_gone(token: str, seconds: float) -> list[int]:
    """The processes with ``token`` still there after up to ``seconds`` (none, when all ended)."""
    deadline = time.monotonic() + seconds
    while True:
        left = processes_with(token)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def kill_all(token: str) -> None:
    """Test clean-up: whatever still carries ``token`` is killed (never the test itself)."""
    for pid in processes_with(token):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def launch(*args, token: str, env: dict[str, str] | None = None):
    """``workflow.launch`` (the launcher as a user runs it) with every process of the run marked
    with ``token``; whatever of the run is left is killed after the test."""
    kill_all_later(token)
    return launch_workflow(*args, env={**(env or {}), TOKEN_VAR: token})


def kill_all_later(token: str) -> None:
    """Note ``token`` for clean-up at the end of the test session (see tests/adversarial/conftest.py)."""
    _TOKENS.append(token)


_TOKENS: list[str] = []


def start_launcher(*args, token: str, env: dict[str, str] | None = None):
    """The launcher started in the background (for kill -9 and cancel), marked with ``token``."""
    kill_all_later(token)
    return subprocess.Popen([sys.executable, str(LAUNCHER), *map(str, args), "--quiet"],
                            env={**os.environ, **(env or {}), TOKEN_VAR: token},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
