"""The launcher under faults, as a user meets them: SIGTERM or Ctrl-C stops it and all of its
workers and says how to resume; an S3 endpoint that never answers ends in one line."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from starfish_batch.launcher.executors import local
from tests.support.faults import alive, ctrl_c_open, silent_endpoint, wait_for
from tests.support.workflow import ISS_RECIPE, LAUNCHER, launch, recipe_with, write_experiment

# Appended to the ISS recipe: each worker notes its pid, then works for ten minutes.
SLOW_WRAPPER = '''

def process_fov(fov, codebook):
    import os
    import pathlib
    import time

    pid_dir = pathlib.Path(os.environ["PID_DIR"])
    (pid_dir / str(os.getpid())).write_text(fov.name)
    try:
        time.sleep(600)
    finally:  # SIGTERM reaches here (the worker's clean-up path); SIGKILL never does
        (pid_dir.parent / "cleaned-up").mkdir(exist_ok=True)
        (pid_dir.parent / "cleaned-up" / str(os.getpid())).write_text("")
'''


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    return write_experiment(tmp_path_factory.mktemp("experiment"))


def _start(*args, env=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(LAUNCHER), *map(str, args), "--quiet"],
                            env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_open)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_launcher_and_every_worker(experiment, tmp_path, sig):
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    recipe = recipe_with(tmp_path, SLOW_WRAPPER)
    launcher = _start("--experiment-url", experiment, "--recipe", recipe, "--results-url",
                      tmp_path / "results", "--run-id", "stopped", "--workers", "2",
                      env={"PID_DIR": str(pid_dir)})
    workers: list[int] = []
    try:
        assert wait_for(lambda: len(list(pid_dir.iterdir())) == 2, 120), launcher.stderr
        workers = [int(p.name) for p in pid_dir.iterdir()]
        launcher.send_signal(sig)
        _, err = launcher.communicate(timeout=60)
        assert launcher.returncode == 130, err[-2000:]
        assert wait_for(lambda: not any(alive(pid) for pid in workers), 5), "workers left running"
        # the workers ended on SIGTERM (their clean-up ran), not on the SIGKILL 10 s later; said by
        # the workers themselves, not by a wall-clock bound that a loaded machine can pass
        cleaned = tmp_path / "cleaned-up"
        assert sorted(int(p.name) for p in cleaned.iterdir()) == sorted(workers), err[-2000:]
        assert "the workers are stopped" in err
        resume = err.split("continue with: ", 1)[1].splitlines()[0]
        assert resume.startswith(f"{sys.executable} {LAUNCHER} --resume stopped --results-url ")
        assert "Traceback" not in err
    finally:
        launcher.kill()
        for pid in workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_silent_s3_endpoint_ends_the_launcher_in_one_line(experiment):
    with silent_endpoint() as url:
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, str(LAUNCHER), "--experiment-url", str(experiment), "--recipe",
             str(ISS_RECIPE), "--results-url", "s3://results/runs", "--run-id", "r1", "--quiet"],
            env={**os.environ, "AWS_ENDPOINT_URL": url, "STARFISH_BATCH_CONNECT_TIMEOUT": "1",
                 "STARFISH_BATCH_READ_TIMEOUT": "1"},
            capture_output=True, text=True, timeout=90)
        seconds = time.monotonic() - started
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert ": error: cannot check s3://results/runs/r1/manifest.json: " in lines[-1]
    assert "timeout" in lines[-1].lower()
    assert "Traceback" not in proc.stderr
    assert any("retrying (attempt 2 of 2)" in line for line in lines[:-1])  # the user saw the retry
    assert seconds < 60


def test_resume_redoes_a_truncated_table(experiment, tmp_path):
    results = tmp_path / "results"
    first = launch("--experiment-url", experiment, "--recipe", ISS_RECIPE, "--results-url", results,
                   "--run-id", "cut", "--workers", "2")
    assert first.returncode == 0, first.stderr[-2000:]
    table = results / "cut" / "fovs" / "A1.nc"
    whole = table.read_bytes()
    table.write_bytes(whole[: len(whole) // 3])  # a copy cut short
    (results / "cut" / "merged_decoded_fovs.nc").unlink()
    second = launch("--resume", "cut", "--results-url", results)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "1 of 4 FOVs left to process" in second.stderr
    record = json.loads((results / "cut" / "fovs" / "A1.json").read_text())
    assert record["nc_sha256"] == hashlib.sha256(table.read_bytes()).hexdigest()  # made again, whole
    assert (results / "cut" / "merged_decoded_fovs.nc").is_file()


# A stand-in merge that says when SIGTERM reached it (its clean-up ran), then ends.
TERM_MARKER_MERGE = """
import pathlib, signal, sys, time
marker = pathlib.Path(sys.argv[1])
def cleaned_up(signum, frame):
    marker.write_text("SIGTERM")
    sys.exit(143)
signal.signal(signal.SIGTERM, cleaned_up)
pathlib.Path(sys.argv[2]).write_text("started")
time.sleep(60)
"""


def test_ctrl_c_while_the_merge_starts_stops_the_merge_with_sigterm(tmp_path, monkeypatch):
    """A Ctrl-C that arrives while the local merge is being started (held, then raised as the hold
    ends) still stops the merge as any stop does: SIGTERM first, so its clean-up runs."""
    marker, started = tmp_path / "terminated", tmp_path / "started"
    monkeypatch.setattr(local, "worker_command",
                        lambda entry: [sys.executable, "-c", TERM_MARKER_MERGE, str(marker), str(started)])
    spawn = local._spawn

    def spawn_then_ctrl_c(*args, **kwargs):
        proc = spawn(*args, **kwargs)
        assert wait_for(started.exists, 30)  # its handler is in place
        os.kill(os.getpid(), signal.SIGINT)  # held (_held) until the merge is recorded
        return proc

    monkeypatch.setattr(local, "_spawn", spawn_then_ctrl_c)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as a launcher has it
    try:
        with pytest.raises(KeyboardInterrupt):
            local.LocalExecutor().merge(SimpleNamespace(sha256="0" * 64), str(tmp_path / "manifest.json"))
    finally:
        signal.signal(signal.SIGINT, previous)
    assert wait_for(marker.exists, 15), "the merge was not sent SIGTERM"
