"""A real one-node Slurm for the Slurm executor's tests: the cluster ``.ci/run`` started
(``SLURM_CONF`` set and answering), else one started here with scripts/ci/start_slurm.sh and
stopped by PID afterwards; where neither can be had, the tests skip saying why."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import SCRIPTS

START = SCRIPTS / "ci" / "start_slurm.sh"
STOP = SCRIPTS / "ci" / "stop_slurm.sh"
COMMANDS = ("sbatch", "squeue", "sacct", "scontrol", "scancel", "sinfo")


def answers(conf: str) -> bool:
    """The cluster of ``conf`` answers and has a node able to run jobs."""
    try:
        out = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], env={**os.environ, "SLURM_CONF": conf},
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and any(s.strip().rstrip("*") in ("idle", "mixed", "allocated")
                                       for s in out.stdout.splitlines())


def cluster() -> Iterator[str]:
    """Yields the path of a running cluster's slurm.conf."""
    given = os.environ.get("SLURM_CONF")
    if given and answers(given):
        yield given
        return
    if os.geteuid() != 0:
        pytest.skip("Slurm tests need root to start a one-node Slurm (scripts/ci/start_slurm.sh), "
                    "or SLURM_CONF of a running one")
    missing = [c for c in ("slurmctld", "slurmd", "munged", "sbatch") if shutil.which(c) is None]
    if missing:
        pytest.skip(f"Slurm is not installed here ({', '.join(missing)} missing): "
                    "scripts/ci/start_slurm.sh installs slurm-wlm and munge (as .ci/run does)")
    folder = tempfile.mkdtemp(prefix="starfish-slurm-")  # not under pytest's 0700 folder: munged must reach it
    os.chmod(folder, 0o755)
    started = subprocess.run([str(START), folder], capture_output=True, text=True, timeout=180)
    try:
        if started.returncode != 0:
            said = (started.stderr.strip().splitlines() or ["no message"])[-1]
            pytest.skip(f"a one-node Slurm cannot run here: {said}")
        yield str(Path(folder) / "slurm.conf")
    finally:
        subprocess.run([str(STOP), folder], capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


def counting_path(folder: Path) -> tuple[str, Path]:
    """A PATH whose Slurm commands log each call (one line: the command's name) to a file,
    then run the real command: to count the calls a run makes. Returns (PATH, the log)."""
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "calls.log"
    log.touch()
    for name in COMMANDS:
        real = shutil.which(name)
        if real is None:
            continue
        script = folder / name
        script.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\nexec "{real}" "$@"\n')
        script.chmod(0o755)
    return f"{folder}{os.pathsep}{os.environ.get('PATH', '')}", log


def calls(log: Path, name: str) -> int:
    return sum(1 for line in log.read_text().splitlines() if line.split(" ", 1)[0] == name)


def job_states(conf: str, job_ids: list[str]) -> dict[str, str]:
    """``<id>`` or ``<array id>_<task>`` -> state, from squeue."""
    out = subprocess.run(["squeue", "-h", "-r", "-t", "all", "-j", ",".join(job_ids), "-o", "%i %T"],
                         env={**os.environ, "SLURM_CONF": conf}, capture_output=True, text=True, timeout=60)
    return dict(line.split() for line in out.stdout.splitlines() if line.strip())


def settled(conf: str, job_ids: list[str], timeout: float = 60) -> dict[str, str]:
    """``job_states`` once no job is COMPLETING any more (a cancelled task's processes ending)."""
    deadline = time.monotonic() + timeout
    while True:
        found = job_states(conf, job_ids)
        if "COMPLETING" not in found.values() or time.monotonic() > deadline:
            return found
        time.sleep(1)
