"""``cancel`` of a run that runs on this machine: it stops the launcher running it, as Ctrl-C
in its terminal would (its workers and what they started stop with it; outputs are kept).

The launcher that holds a run is named by the run's claim (``launcher.lock``: host and pid).
It is sent SIGTERM only when it is on this host and its command line is the launcher's, so a
stale claim whose pid now belongs to another program is never signalled.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time

from starfish_batch.core import storage
from starfish_batch.core.contract import LOCK_NAME
from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.core.manifest import Manifest

WAIT_SECONDS = 20.0
_LAUNCHER_MARKS = (b"starfish_workflow", b"starfish-workflow", b"starfish_batch.launcher")


def _holder(manifest: Manifest) -> dict:
    url = storage.join(manifest.run_root, LOCK_NAME)
    try:
        holder = json.loads(storage.read_bytes(url)) if storage.exists(url) else {}
    except (StarfishBatchError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _is_launcher(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except OSError:
        return False
    return any(mark in cmdline for mark in _LAUNCHER_MARKS)


def cancel_local(manifest: Manifest, wait: float = WAIT_SECONDS) -> tuple[int, str]:
    """Stop the launcher of a local run; returns (exit code, what was done, in words)."""
    run_id = manifest.run_id
    resume = f"continue later with --resume {run_id}"
    holder = _holder(manifest)
    pid, host = holder.get("pid"), holder.get("host")
    if not isinstance(pid, int) or not host:
        return 0, (f"run {run_id} runs on no machine now (no launcher holds it): nothing to cancel; "
                   f"outputs written so far are kept; {resume}")
    if host != socket.gethostname():
        return 1, (f"run {run_id} is run by a launcher on {host} (pid {pid}), not on this machine: "
                   f"stop it there (Ctrl-C in its terminal, or kill {pid}); {resume}")
    if not storage.pid_alive(pid) or not _is_launcher(pid):
        return 0, (f"run {run_id}: its launcher (pid {pid}) is no longer running: nothing to cancel; "
                   f"outputs written so far are kept; {resume}")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and storage.pid_alive(pid) and _is_launcher(pid):
        time.sleep(0.1)
    if storage.pid_alive(pid) and _is_launcher(pid):
        return 1, (f"run {run_id}: sent SIGTERM to its launcher (pid {pid}), which has not ended after "
                   f"{wait:g} s; it may still be stopping its workers")
    return 0, (f"run {run_id}: stopped its launcher (pid {pid}, SIGTERM, as Ctrl-C in its terminal) and with "
               f"it every worker and process of the run; outputs written so far are kept; {resume}")

