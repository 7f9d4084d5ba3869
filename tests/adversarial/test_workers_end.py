"""Workers that always end (issue 30, item 4), on the local executor: a recipe that hangs, exits
the interpreter, or leaves threads and processes behind; a launcher killed with SIGKILL, then
resumed; a local run cancelled. Every process of a run carries a token in its environment, so
"nothing of the run keeps running" is checked over the whole machine."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from starfish_batch.demo.experiment import write_demo_experiment
from tests.support import hostile

# One FOV per misbehaviour, named to forge terminal output: it hangs (leaving a child process
# and a thread), calls sys.exit(0), os._exit(3), or prints a 20 MB line and raises a 20 MB error.
HOSTILE_NAMES = ["flood", "hang\x1b]0;pwned\x07", "osexit", "sysexit\nstarfish_workflow.py: all good"]
HOSTILE = """
def process_fov(fov, codebook):
    import os, sys, threading, time
    if fov.name.startswith("hang"):
{spawn}        threading.Thread(target=time.sleep, args=(3600,)).start()
        time.sleep(3600)
    if fov.name.startswith("sysexit"):
        sys.exit(0)
    if fov.name == "osexit":
        os._exit(3)
    sys.stdout.write("x" * 20_000_000 + "\\n")
    sys.stdout.flush()
    raise ValueError("y" * 20_000_000)
""".replace("{spawn}", "".join("    " + line + "\n" for line in hostile.SPAWN.splitlines()))

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


def test_hang_exit_and_flood_each_fail_their_fov_naming_the_cause_and_leave_nothing(tmp_path):
    experiment = write_demo_experiment(tmp_path / "exp", fov_names=HOSTILE_NAMES, shape=(64, 64), n_spots=4)
    token = hostile.marker()
    results = tmp_path / "results"
    proc = hostile.launch("--experiment-url", experiment, "--recipe", _recipe(tmp_path, HOSTILE),
                             "--results-url", results, "--run-id", "hostile", "--workers", "4",
                             "--fov-timeout", "40", token=token)
    ended = time.time()
    err = proc.stderr
    assert proc.returncode == 1, err[-5000:]
    print(err[-5000:])  # shown when an assertion below fails
    assert "FOV hang\\x1b]0;pwned\\x07: timed out after 40 s (--fov-timeout)" in err
    assert "FOV sysexit\\nstarfish_workflow.py: all good: the recipe exited (code 0) before returning a table" in err
    assert "FOV osexit: the recipe exited (code 3) before returning a table" in err
    assert "(code 143)" not in err  # the timeout's SIGTERM is not taken for the recipe's own exit
    assert "FOV flood: recipe raised ValueError: yyyy" in err and "more characters]" in err
    assert "4 of 4 FOVs failed" in err
    # Bounded and printable: no 20 MB on the terminal, no escape sequence, no forged line.
    assert len(err) + len(proc.stdout) < 100_000, len(err)
    assert "\x1b" not in err and "\x07" not in err
    assert not any(line.startswith("starfish_workflow.py: all good") for line in err.splitlines())
    page = results / "hostile" / "report.html"
    assert page.stat().st_size <= 5 * 2**20, page.stat().st_size
    assert "timed out after 40 s" in page.read_text()
    # From the first worker's start to the launcher's end: the timeout and a few seconds.
    first_start = min(p.stat().st_mtime for p in (results / "hostile" / "logs").iterdir()) - 0.5
    assert ended - first_start < 40 + 8, ended - first_start
    assert hostile.wait_gone(token, 2) == []  # the workers, the recipe's child and thread, the guardian


def test_threads_and_processes_a_recipe_leaves_end_with_its_fov(two_fovs, tmp_path):
    token = hostile.marker()
    proc = hostile.launch("--experiment-url", two_fovs, "--recipe", _recipe(tmp_path, LEAVES_BEHIND),
                             "--results-url", tmp_path / "results", "--run-id", "leaves", "--workers", "2",
                             token=token)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "results" / "leaves" / "merged_decoded_fovs.nc").exists()
    assert "ACTB\\x1b[31m" in proc.stdout and "GAPDH\\nforged" in proc.stdout  # the summary's targets
    assert "\x1b" not in proc.stdout + proc.stderr
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
    proc = hostile.launch("--resume", "killed", "--results-url", results, token=token, env=env)
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
    proc = hostile.launch("cancel", "cancelled", "--results-url", results, token=hostile.marker())
    assert proc.returncode == 0, proc.stderr
    assert f"stopped its launcher (pid {launcher.pid}" in proc.stderr
    assert "continue later with --resume cancelled" in proc.stderr
    _, err = launcher.communicate(timeout=30)
    assert launcher.returncode == 130, err
    assert "interrupted: the workers are stopped" in err
    assert hostile.wait_gone(token, 3) == []
    again = hostile.launch("cancel", "cancelled", "--results-url", results, token=hostile.marker())
    assert again.returncode == 0 and "nothing to cancel" in again.stderr
