"""How many CPUs and how much memory this process may really use.

Inside a 1-vCPU container on a 96-core host, ``os.cpu_count()`` says 96; starfish's filters
and numpy's BLAS would then start 96 threads fighting for one core. We read the scheduler
affinity and the cgroup CPU quota instead, and size every thread pool to that.
"""

from __future__ import annotations

import math
import os
import resource
from pathlib import Path

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)

_CGROUP_ROOT = Path("/sys/fs/cgroup")


def _cgroup_cpu_quota(root: Path = _CGROUP_ROOT) -> float | None:
    """CPUs allowed by the cgroup quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), or None."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        if quota != "max":
            return int(quota) / int(period)
        return None
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        if quota_us > 0 and period_us > 0:
            return quota_us / period_us
    except (OSError, ValueError):
        pass
    return None


def available_cpus(cgroup_root: Path = _CGROUP_ROOT) -> int:
    """The CPUs this process may use: the smaller of its affinity and its cgroup quota."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    quota = _cgroup_cpu_quota(cgroup_root)
    if quota is not None:
        count = min(count, max(1, math.ceil(quota)))
    return max(1, count)


def available_memory_bytes(cgroup_root: Path = _CGROUP_ROOT) -> int | None:
    """Memory this process may use: the cgroup limit or the machine's available memory."""
    limits: list[int] = []
    for name in ("memory.max", "memory/memory.limit_in_bytes"):
        try:
            text = (cgroup_root / name).read_text().strip()
            if text != "max" and int(text) < 1 << 60:
                limits.append(int(text))
        except (OSError, ValueError):
            continue
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                limits.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    return min(limits) if limits else None


def oom_kills(cgroup_root: Path = _CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")) -> int | None:
    """How many processes the kernel's OOM killer has killed in this process's memory cgroup
    (v2 ``memory.events``, v1 ``memory.oom_control``), or None where the kernel does not say."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        lines = []
    candidates: list[Path] = []
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if controllers == "" or "memory" in controllers.split(","):
            base = cgroup_root if controllers == "" else cgroup_root / "memory"
            parts = [p for p in path.split("/") if p]
            # Inside a container the mount is rooted at the container's own cgroup: try the
            # path, then ever shorter tails of it.
            candidates += [base.joinpath(*parts[i:]) for i in range(len(parts) + 1)]
    candidates += [cgroup_root, cgroup_root / "memory"]
    for folder in candidates:
        for name in ("memory.events", "memory.oom_control"):
            try:
                for row in (folder / name).read_text().splitlines():
                    key, _, value = row.partition(" ")
                    if key == "oom_kill":
                        return int(value)
            except (OSError, ValueError):
                continue
    return None


def limit_threads(n: int) -> None:
    """Size BLAS/OpenMP pools and every ``os.cpu_count()``-based default to ``n`` threads.

    Call before numpy or starfish is imported: BLAS reads its variable once, at load time.
    starfish's filters and ``ThreadPoolExecutor`` ask ``os.cpu_count()``; in a worker process
    that exists only to run one FOV, answering ``n`` there is the least intrusive fix.
    """
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, str(n))
    os.cpu_count = lambda: n  # type: ignore[assignment]
    try:
        from threadpoolctl import threadpool_limits  # lazy: threadpoolctl ~25 ms
    except ImportError:
        return
    threadpool_limits(n)


def peak_memory_bytes() -> int:
    """Peak resident memory of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
