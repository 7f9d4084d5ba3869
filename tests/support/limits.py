"""Real memory limits for a launcher started by a test: ``ulimit -v`` (every system) and a
memory cgroup whose kernel OOM killer kills a worker (where the test may create one)."""

from __future__ import annotations

import contextlib
import os
import shlex
import uuid
from collections.abc import Iterator
from pathlib import Path

CGROUP_V1_MEMORY = Path("/sys/fs/cgroup/memory")
CGROUP_V2 = Path("/sys/fs/cgroup")


def ulimit_prefix(kib: int) -> str:
    """A shell prefix limiting the address space of what follows (inherited by its workers)."""
    return f"ulimit -v {int(kib)}; "


@contextlib.contextmanager
def memory_cgroup(limit_bytes: int) -> Iterator[str | None]:
    """A new memory cgroup of ``limit_bytes``; yields the shell prefix that moves the shell
    into it (then ``exec`` the command), or None when no cgroup can be created here. The
    cgroup is removed afterwards (its processes have ended by then)."""
    name = f"starfish-batch-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    if (CGROUP_V1_MEMORY / "memory.limit_in_bytes").exists():
        folder, limit_file = CGROUP_V1_MEMORY / name, "memory.limit_in_bytes"
    elif (CGROUP_V2 / "cgroup.controllers").exists():
        folder, limit_file = CGROUP_V2 / name, "memory.max"
    else:
        yield None
        return
    try:
        folder.mkdir()
        (folder / limit_file).write_text(str(int(limit_bytes)))
        swap = folder / ("memory.memsw.limit_in_bytes" if limit_file.endswith("bytes") else "memory.swap.max")
        with contextlib.suppress(OSError):
            swap.write_text(str(int(limit_bytes)) if limit_file.endswith("bytes") else "0")
    except OSError:
        with contextlib.suppress(OSError):
            folder.rmdir()
        yield None
        return
    try:
        yield f"echo $$ > {shlex.quote(str(folder / 'cgroup.procs'))}; "
    finally:
        with contextlib.suppress(OSError):
            folder.rmdir()
