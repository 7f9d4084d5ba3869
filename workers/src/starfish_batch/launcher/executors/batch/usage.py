"""What each job attempt of a run used, read from ``describe_jobs`` payloads (pure functions).

AWS documents, per job, ``container.resourceRequirements`` (VCPU, MEMORY in MiB; older jobs
``container.vcpus``/``memory``) and ``attempts[]`` with ``startedAt``/``stoppedAt`` in epoch
milliseconds. An attempt that has not stopped is counted up to ``now``.
"""

from __future__ import annotations

from starfish_batch.launcher.pricing import Usage


def resources(job: dict) -> tuple[float, float]:
    """(vCPUs, memory MiB) the job ran with: resourceRequirements first, else vcpus/memory."""
    container = job.get("container") or {}
    found = {r.get("type"): r.get("value") for r in container.get("resourceRequirements") or []}
    vcpus = float(found.get("VCPU") or container.get("vcpus") or 0)
    memory = float(found.get("MEMORY") or container.get("memory") or 0)
    return vcpus, memory


def usages(job: dict, now_ms: int) -> list[Usage]:
    """One ``Usage`` per attempt of ``job`` that started (array parents have none)."""
    vcpus, memory = resources(job)
    found = []
    for attempt in job.get("attempts") or []:
        started = attempt.get("startedAt")
        if not started:
            continue
        stopped = attempt.get("stoppedAt") or now_ms
        found.append(Usage(job=job["jobId"], vcpus=vcpus, memory_mib=memory,
                           seconds=max(0.0, (stopped - started) / 1000)))
    if not found and job.get("startedAt") and not (job.get("arrayProperties") or {}).get("size"):
        # A started job whose attempts list is empty (moto's in-process Batch): its own times.
        stopped = job.get("stoppedAt") or now_ms
        found.append(Usage(job=job["jobId"], vcpus=vcpus, memory_mib=memory,
                           seconds=max(0.0, (stopped - job["startedAt"]) / 1000)))
    return found
