"""Job sizes AWS accepts: memory with headroom rounded to the next size, and Fargate's
valid vCPU/memory pairs (a Fargate job with any other pair is refused at submission)."""

from __future__ import annotations

import math

HEADROOM = 1.25  # the peak of a few FOVs is not the peak of all of them
MIB = 2**20
# Fargate: vCPUs -> the memory sizes (MiB) it offers with them.
FARGATE_PAIRS: dict[float, list[int]] = {
    0.25: [512, 1024, 2048],
    0.5: list(range(1024, 4096 + 1, 1024)),
    1: list(range(2048, 8192 + 1, 1024)),
    2: list(range(4096, 16384 + 1, 1024)),
    4: list(range(8192, 30720 + 1, 1024)),
    8: list(range(16384, 61440 + 1, 4096)),
    16: list(range(32768, 122880 + 1, 8192)),
}
# EC2: the next size up from this ladder (whole and half powers of two), at least 512 MiB.
_LADDER = sorted({512, *(2**k for k in range(10, 20)), *(3 * 2**k for k in range(9, 19))})


def recommend_memory_mib(peak_bytes: float, headroom: float = HEADROOM) -> int:
    """The next size up from the peak plus headroom: 1.1 GB -> 1.375 GB -> 1536 MiB."""
    needed = math.ceil(peak_bytes * headroom / MIB)
    for size in _LADDER:
        if size >= needed:
            return size
    return int(math.ceil(needed / 1024) * 1024)


def fargate_pair(vcpus: float, memory_mib: int) -> tuple[float, int]:
    """The smallest valid Fargate (vCPUs, MiB) with at least ``vcpus`` and ``memory_mib``."""
    for cpu in sorted(FARGATE_PAIRS):
        if cpu < vcpus:
            continue
        for mem in FARGATE_PAIRS[cpu]:
            if mem >= memory_mib:
                return cpu, mem
    raise ValueError(f"no Fargate size has {vcpus} vCPUs and {memory_mib} MiB "
                     f"(at most 16 vCPUs and 122880 MiB); use an EC2 compute environment")
