"""A local worker that runs out of memory under a real limit is reported as out of memory,
with its peak and what to do, by the one failure printer."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from starfish_batch.demo.experiment import write_demo_experiment
from tests.support.limits import memory_cgroup, ulimit_prefix
from tests.support.workflow import LAUNCHER

GREEDY = """
def process_fov(fov, codebook):
    import numpy as np

    hog = np.ones({n_bytes} // 8)  # written, so every page is really used
    return hog
"""


def _launch_under(prefix: str, tmp_path, n_bytes: int) -> subprocess.CompletedProcess:
    experiment = write_demo_experiment(tmp_path / "experiment", fov_names=["A1"], shape=(64, 64), n_spots=5)
    recipe = tmp_path / "greedy.py"
    recipe.write_text(GREEDY.format(n_bytes=n_bytes))
    command = " ".join([sys.executable, str(LAUNCHER), "--experiment-url", str(experiment),
                        "--recipe", str(recipe), "--results-url", str(tmp_path / "results"),
                        "--run-id", "oom", "--workers", "1", "--quiet"])
    return subprocess.run(["bash", "-c", f"{prefix}exec {command}"], capture_output=True, text=True,
                          timeout=600, env=dict(os.environ))


def test_worker_past_its_address_space_limit(tmp_path):
    """``ulimit -v`` 3 GiB, a recipe asking for 6 GB: Python cannot allocate it."""
    proc = _launch_under(ulimit_prefix(3 * 2**20), tmp_path, 6 * 10**9)
    assert proc.returncode == 1
    assert "MemoryError" in proc.stderr
    assert "out of memory (its peak: " in proc.stderr
    assert "run fewer FOVs at once (--workers) or on a machine with more memory" in proc.stderr


def test_worker_killed_by_the_oom_killer(tmp_path):
    """A 700 MB memory cgroup and a recipe that writes 1.5 GB: the kernel kills the worker."""
    with memory_cgroup(700 * 10**6) as prefix:
        if prefix is None:
            pytest.skip("no memory cgroup can be created here (needs a writable cgroup v1 or v2 mount)")
        proc = _launch_under(prefix, tmp_path, 15 * 10**8)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "killed by the kernel's OOM killer (signal SIGKILL): out of memory" in proc.stderr
    assert "out of memory (its peak: 0." in proc.stderr  # below the cgroup's 0.65 GiB
