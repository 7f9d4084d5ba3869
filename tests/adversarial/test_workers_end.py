"""Workers that always end (issue 30, item 4), on the local executor: a recipe that hangs, exits
the interpreter, or leaves threads and processes behind; a launcher killed with SIGKILL, then
resumed; a local run cancelled. Every process of a run carries a token in its environment, so
"nothing of the run keeps running" is checked over the whole machine."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from tests.support import hostile

HANG = """
def process_fov(fov, codebook):
    import threading, time
{spawn}    threading.Thread(target=time.sleep, args=(3600,)).start()
    time.sleep(3600)
""".replace("{spawn}", hostile.SPAWN)

EXITS = """
def process_fov(fov, codebook):
    import os, sys
    if fov.name == "A1":
        sys.exit(0)
    os._exit(3)
"""

LEAVES_BEHIND = hostile.FAST_TABLE + """

def process_fov(fov, codebook):
    import threading, time
{spawn}    threading.Thread(target=time.sleep, args=(3600,)).start()  # not a daemon: exit would wait
    return table(fov, codebook)
""".replace("{spawn}", hostile.SPAWN)

# Holds (a child process and a sleep) while $SFB_TEST_HOLD exists; logs each call's start and end.
HOLDS = hostile.FAST_TABLE + """

def process_fov(fov, codebook):
    import os, pathlib, time
    log = pathlib.Path(os.environ["SFB_TEST_LOG"])
    with log.open("a") as f:
        f.write(f"start {fov.name} {os.getpid()} {time.time()}\\n")
    if pathlib.Path(os.environ["SFB_TEST_HOLD"]).exists():
{spawn}        time.sleep(3600)
    result = table(fov, codebook)
    with log.open("a") as f:
        f.write(f"end {fov.name} {os.getpid()} {time.time()}\\n")
    return result
""".replace("{spawn}", "".join("    " + line + "\n" for line in hostile.SPAWN.splitlines()))


def _recipe(tmp_path: Path, source: str) -> Path:
    path = tmp_path / "recipe.py"
    path.write_text(source)
    return path


def test_a_hanging_recipe_fails_each_fov_as_timed_out_and_leaves_nothing(two_fovs, tmp_path):
    token = hostile.marker()
    results = tmp_path / "results"
    proc, _ = hostile.launch("--experiment-url", two_fovs, "--recipe", _recipe(tmp_path, HANG),
                             "--results-url", results, "--run-id", "hang", "--workers", "2",
                             "--fov-timeout", "5", token=token, timeout=240)
    ended = time.time()
    assert proc.returncode == 1, proc.stderr
    assert "timed out after 5 s (--fov-timeout)" in proc.stderr  # A1's and A2's cause, told once
    assert "2 of 2 FOVs failed (A1, A2)" in proc.stderr or "2 of 2 FOVs failed (A2, A1)" in proc.stderr
    # From the first worker's start to the launcher's end: the timeout and a few seconds.
    first_start = min(p.stat().st_mtime for p in (results / "hang" / "logs").iterdir()) - 0.5
    assert ended - first_start < 5 + 8, ended - first_start
    assert hostile.wait_gone(token, 2) == []  # the workers, the recipe's children and threads, the guardian
    page = (results / "hang" / "report.html").read_text()
    assert "timed out after 5 s" in page


def test_a_recipe_that_exits_the_interpreter_fails_its_fov_naming_it(two_fovs, tmp_path):
    token = hostile.marker()
    proc, _ = hostile.launch("--experiment-url", two_fovs, "--recipe", _recipe(tmp_path, EXITS),
                             "--results-url", tmp_path / "results", "--run-id", "exits", "--workers", "2",
                             token=token, timeout=240)
    assert proc.returncode == 1, proc.stderr
    assert "FOV A1: the recipe exited (code 0) before returning a table" in proc.stderr  # sys.exit(0)
    assert "FOV A2: the recipe exited (code 3) before returning a table" in proc.stderr  # os._exit(3)
    assert "2 of 2 FOVs failed" in proc.stderr
    assert not (tmp_path / "results" / "exits" / "merged_decoded_fovs.nc").exists()


def test_threads_and_processes_a_recipe_leaves_end_with_its_fov(two_fovs, tmp_path):
    token = hostile.marker()
    proc, _ = hostile.launch("--experiment-url", two_fovs, "--recipe", _recipe(tmp_path, LEAVES_BEHIND),
                             "--results-url", tmp_path / "results", "--run-id", "leaves", "--workers", "2",
                             token=token, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "results" / "leaves" / "merged_decoded_fovs.nc").exists()
    assert hostile.wait_gone(token, 2) == []


def _starts(log: Path) -> list[tuple[str, str, int, float]]:
    if not log.exists():
        return []
    rows = []
    for line in log.read_text().splitlines():
        kind, fov, pid, at = line.split()
        rows.append((kind, fov, int(pid), float(at)))
    return rows


def _wait_for_starts(log: Path, n: int, launcher, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while sum(1 for r in _starts(log) if r[0] == "start") < n:
        assert launcher.poll() is None, launcher.communicate()
        assert time.monotonic() < deadline, "the workers did not start"
        time.sleep(0.2)


def test_after_kill_9_of_the_launcher_nothing_runs_and_a_resume_processes_each_fov_once(two_fovs, tmp_path):
    token = hostile.marker()
    log, hold = tmp_path / "calls.log", tmp_path / "hold"
    hold.touch()
    env = {"SFB_TEST_LOG": str(log), "SFB_TEST_HOLD": str(hold)}
    results = tmp_path / "results"
    launcher = hostile.start_launcher("--experiment-url", two_fovs, "--recipe", _recipe(tmp_path, HOLDS),
                                      "--results-url", results, "--run-id", "killed", "--workers", "2",
                                      token=token, env=env)
    _wait_for_starts(log, 2, launcher)
    os.kill(launcher.pid, signal.SIGKILL)
    launcher.wait()
    assert hostile.wait_gone(token, 3) == []  # workers, their children, the guardian: all ended
    first = {pid for kind, _, pid, _ in _starts(log)}
    hold.unlink()
    resumed = time.time()
    proc, _ = hostile.launch("--resume", "killed", "--results-url", results, token=token, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr
    calls = _starts(log)
    assert not [c for c in calls if c[2] in first and c[0] == "end"]  # the killed workers never finished
    after = [c for c in calls if c[3] >= resumed]
    assert sorted(c[1] for c in after if c[0] == "start") == ["A1", "A2"]  # each FOV once
    assert sorted(c[1] for c in after if c[0] == "end") == ["A1", "A2"]
    assert (results / "killed" / "merged_decoded_fovs.nc").exists()


def test_cancel_of_a_local_run_stops_its_launcher_and_says_so(two_fovs, tmp_path):
    token = hostile.marker()
    log, hold = tmp_path / "calls.log", tmp_path / "hold"
    hold.touch()
    env = {"SFB_TEST_LOG": str(log), "SFB_TEST_HOLD": str(hold)}
    results = tmp_path / "results"
    launcher = hostile.start_launcher("--experiment-url", two_fovs, "--recipe", _recipe(tmp_path, HOLDS),
                                      "--results-url", results, "--run-id", "cancelled", "--workers", "2",
                                      token=token, env=env)
    _wait_for_starts(log, 2, launcher)
    proc, _ = hostile.launch("cancel", "cancelled", "--results-url", results, token=hostile.marker(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert f"stopped its launcher (pid {launcher.pid}" in proc.stderr
    assert "continue later with --resume cancelled" in proc.stderr
    _, err = launcher.communicate(timeout=30)
    assert launcher.returncode == 130, err
    assert "interrupted: the workers are stopped" in err
    assert hostile.wait_gone(token, 3) == []
    again, _ = hostile.launch("cancel", "cancelled", "--results-url", results, token=hostile.marker(), timeout=60)
    assert again.returncode == 0 and "nothing to cancel" in again.stderr
