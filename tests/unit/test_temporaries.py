"""Temporary files a killed process left (real processes, killed with SIGKILL) are removed by
the next write to the same place; those of a live process are left alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from starfish_batch.core import storage

# A writer that makes its temporary file, says so, and waits to be killed mid-write.
WRITER = """
import sys, time
from starfish_batch.core import storage
with storage.staged_output(sys.argv[1], ".json") as tmp:
    tmp.write_bytes(b"half")
    print(tmp, flush=True)
    time.sleep(600)
"""


def _start_writer(url: str, env: dict | None = None) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, url], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    return proc, Path(proc.stdout.readline().strip())


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_next_write_removes_what_a_killed_writer_left(tmp_path):
    target = tmp_path / "run" / "summary.json"
    killed, left = _start_writer(str(target))
    _kill(killed)
    assert left.exists()  # SIGKILL: nothing could clean up
    running, kept = _start_writer(str(target))  # the next attempt
    try:
        assert not left.exists()
        storage.write_text(str(target), "{}")
        assert kept.exists()  # its process still writes: untouched
        assert target.read_text() == "{}"
    finally:
        _kill(running)


def test_local_copies_for_s3_of_a_killed_process_are_removed(tmp_path, monkeypatch):
    killed, left = _start_writer("s3://bucket/run/summary.json", {"TMPDIR": str(tmp_path)})
    _kill(killed)
    assert left.parent == tmp_path and left.exists()
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    with storage.local_temporary(".nc") as tmp:
        assert tmp.parent == tmp_path
    assert not left.exists()
