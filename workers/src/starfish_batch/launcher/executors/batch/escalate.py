"""The next size of a FOV that ran out of memory: AWS Batch retries a job with the same
memory, so an out-of-memory FOV fails every attempt; we resubmit it with twice the memory,
up to a cap, as a size AWS accepts (a valid vCPU/memory pair on Fargate)."""

from __future__ import annotations

from starfish_batch.launcher.pricing import fargate_pair

DEFAULT_MAX_MEMORY_MIB = 16384


def next_size(current: dict[str, float], max_memory_mib: int, fargate: bool) -> dict[str, float] | None:
    """Twice ``current["memory_mib"]`` (at most ``max_memory_mib``), or None at the cap."""
    memory = min(2 * int(current["memory_mib"]), int(max_memory_mib))
    vcpus = current["vcpus"]
    if memory <= current["memory_mib"]:
        return None
    if fargate:
        try:
            vcpus, memory = fargate_pair(vcpus, memory)
        except ValueError:
            return None
        if memory > max_memory_mib:
            return None
    return {"vcpus": vcpus, "memory_mib": memory}
