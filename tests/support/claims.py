"""Launchers racing for a dead launcher's claim: used by tests/adversarial and ``make bench``.

Each launcher is its own process (as two terminals running ``--resume`` are). Before each race
the run holds a ``launcher.lock`` naming a process of this host that has ended; the launchers
are released together by a barrier and each calls ``RunClaim.acquire``. A launcher that wins
stays alive until every launcher of the race has answered, so a late one sees a live holder,
as it would in real life. The count of races with more than one winner is the figure.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import subprocess
import sys

from starfish_batch.core import storage
from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.launcher.claim import RunClaim


def dead_pid() -> int:
    """The pid of a process of this host that has ended (and was reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def stale_claim(pid: int) -> bytes:
    return json.dumps({"host": socket.gethostname(), "pid": pid, "started_at": "2020-01-01T00:00:00+00:00"}).encode()


def _racer(run_roots: list[str], barrier, answers, env: dict[str, str]) -> None:
    os.environ.update(env)

    storage.s3_client.cache_clear()  # a client of its own, not the parent's connections
    for i, root in enumerate(run_roots):
        barrier.wait()
        try:
            RunClaim().acquire(root, f"race-{i}")
            answers.put((i, "won"))
        except StarfishBatchError as exc:
            answers.put((i, f"lost: {exc}"))
        except Exception as exc:  # noqa: BLE001 - reported, the race counts it as no win
            answers.put((i, f"error: {type(exc).__name__}: {exc}"))
        barrier.wait()  # the winner holds its claim (and lives) until everyone answered


def race(run_roots: list[str], launchers: int = 3, env: dict[str, str] | None = None,
         timeout: float = 600.0) -> dict[int, list[str]]:
    """Every run root (each holding a stale claim) raced for by ``launchers`` processes;
    returns race -> the answers of its launchers."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(launchers, timeout=timeout)
    answers = ctx.Queue()
    procs = [ctx.Process(target=_racer, args=(run_roots, barrier, answers, dict(env or {})))
             for _ in range(launchers)]
    for p in procs:
        p.start()
    results: dict[int, list[str]] = {i: [] for i in range(len(run_roots))}
    try:
        for _ in range(len(run_roots) * launchers):
            i, answer = answers.get(timeout=timeout)
            results[i].append(answer)
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
                p.join()
    return results


def winners(results: dict[int, list[str]]) -> dict[int, int]:
    return {i: sum(a == "won" for a in answers) for i, answers in results.items()}
