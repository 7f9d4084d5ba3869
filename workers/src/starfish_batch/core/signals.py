"""SIGTERM as an exception, so that ``finally`` blocks run: temporary files are removed, and
the launcher stops its workers, instead of the process vanishing mid-write.

AWS Batch stops a container with SIGTERM (then SIGKILL 30 s later), ``kill`` sends it, and
the local executor sends it to the process group of each worker it stops.
"""

from __future__ import annotations

import signal

SIGTERM_EXIT = 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: handled where Ctrl-C is (the launcher's interrupted path)."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


class Stopped(SystemExit):
    """SIGTERM arrived in a worker: it ends with 143 (never taken for the recipe's own exit)."""


def _raise_exit(signum, frame) -> None:
    raise Stopped(SIGTERM_EXIT)


def sigterm_interrupts() -> None:
    """The launcher: SIGTERM stops it like Ctrl-C (its workers are stopped and it says how to resume)."""
    signal.signal(signal.SIGTERM, _raise_terminated)


def sigterm_exits() -> None:
    """A worker: SIGTERM ends it with status 143 after its clean-up (temporary files removed)."""
    signal.signal(signal.SIGTERM, _raise_exit)
