"""Workers die with their launcher, even after a ``kill -9`` of it.

Each worker is started with ``PR_SET_PDEATHSIG`` (the kernel kills it when the launcher
dies), but what the recipe started in the worker's process group would live on. So the
launcher also starts one small guardian process and tells it, over a pipe, the process group
of every worker it starts and ends. The guardian does nothing until that pipe closes: then
the launcher has ended (normally, by a signal, or killed), and it kills every group still
listed, then exits. It lives in its own session, so Ctrl-C at the terminal does not reach it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """In a freshly forked child: be killed when the process that started us dies (and do
    not start at all if it already has)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the guardian alone keeps the promise
        pass
    if os.getppid() != parent_pid:
        os._exit(1)


class Guardian:
    """The launcher's side: ``watch(pgid)`` when a worker starts, ``release(pgid)`` once its
    group has ended; ``close()`` when the launcher ends (or the kernel closes it for us)."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None

    def _pipe(self):
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "starfish_batch.launcher.guardian"],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self._proc.stdin

    def _send(self, text: str) -> None:
        try:
            pipe = self._pipe()
            pipe.write(text.encode())
            pipe.flush()
        except OSError:  # the guardian is gone: PR_SET_PDEATHSIG still ends the workers
            pass

    def watch(self, pgid: int) -> None:
        self._send(f"+{pgid}\n")

    def release(self, pgid: int) -> None:
        self._send(f"-{pgid}\n")

    def close(self) -> None:
        if self._proc is not None:
            try:
                self._proc.stdin.close()
            except OSError:
                pass
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
            self._proc = None


GUARDIAN = Guardian()
"""The launcher's one guardian, started with its first worker."""


def main() -> int:
    """The guardian process: read ``+pgid``/``-pgid`` lines until the launcher's end closes
    the pipe, then kill the groups still listed."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    groups: set[int] = set()
    for raw in sys.stdin.buffer:
        text = raw.strip().decode("ascii", "replace")
        if len(text) < 2 or not text[1:].isdigit():
            continue
        (groups.add if text[0] == "+" else groups.discard)(int(text[1:]))
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
