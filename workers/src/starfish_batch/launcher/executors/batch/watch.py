"""Reading ``describe_jobs`` payloads: pure functions, testable on AWS's documented shapes."""

from __future__ import annotations

from starfish_batch.core.contract import MERGE, PROCESS_FOV
from starfish_batch.launcher.executors.batch.jobs import SubmittedRun
from starfish_batch.launcher.outcome import Failure

STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
QUEUED = ("SUBMITTED", "PENDING", "RUNNABLE")
ACTIVE = ("STARTING", "RUNNING")
TERMINAL = ("SUCCEEDED", "FAILED")

# The queue's job_state_time_limit_action (the module's runnable_time_limit_seconds) cancels a job
# that blocked the queue in RUNNABLE with "Canceled by JobStateTimeLimit action due to reason:
# <reason>" (https://docs.aws.amazon.com/batch/latest/userguide/job_stuck_in_runnable.html).
TIME_LIMIT_PREFIX = "Canceled by JobStateTimeLimit action due to reason:"
TIME_LIMIT_CAUSES = {
    "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY":
        "EC2 had no capacity for the instance types allowed (instance_types)",
    "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE":
        "the job needs more vCPUs than the compute environments' max_vcpus",
    "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT":
        "no instance type allowed (instance_types) holds the job's vCPUs and memory "
        "(process_fov / merge in the Terraform module)",
    "MISCONFIGURATION:SERVICE_ROLE_PERMISSIONS":
        "the Batch service role lacks the permissions to start instances",
}


STUCK_AFTER_SECONDS = 600.0


class StuckWatch:
    """Notices FOVs that wait in RUNNABLE while nothing starts, and says why that usually is.

    A job stays RUNNABLE when no compute environment of the queue can place it: it asks for
    more memory or vCPUs than any allowed instance type, the environment is at its maxvCpus, Spot
    capacity is short, or instances cannot reach the network. AWS Batch says nothing about it;
    without this the launcher would follow such a run silently until the queue's time limit.
    """

    def __init__(self, after: float = STUCK_AFTER_SECONDS) -> None:
        self.after = after
        self.since: float | None = None
        self.last: tuple[int, int] | None = None
        self.warned_at: float | None = None

    def update(self, counts: dict[str, int], now: float) -> str | None:
        """A warning the first time (and every ``after`` seconds) RUNNABLE FOVs made no progress."""
        moved = (sum(counts[s] for s in ACTIVE), sum(counts[s] for s in TERMINAL))
        if counts["RUNNABLE"] == 0 or moved != self.last:
            self.since, self.last, self.warned_at = now, moved, None
            return None
        if now - self.since < self.after or (self.warned_at is not None and now - self.warned_at < self.after):
            return None
        self.warned_at = now
        minutes = int((now - self.since) // 60)
        return (f"{counts['RUNNABLE']} FOV(s) have waited in RUNNABLE for {minutes} min with none starting: no "
                "compute environment of the queue can place them yet. Usual causes: process-fov asks for more "
                "memory or vCPUs than any allowed instance type, the environment is at its maximum vCPUs, Spot "
                "capacity is short, or its subnets cannot reach ECR and S3. The queue cancels jobs left RUNNABLE "
                "past the module's runnable_time_limit_seconds (4 hours by default); Ctrl-C stops following, the jobs "
                "keep waiting.")


def status_summary(job: dict) -> dict:
    return (job.get("arrayProperties") or {}).get("statusSummary") or {}


def counts(run: SubmittedRun, described: dict[str, dict]) -> dict[str, int]:
    """FOVs per status over the process-fov jobs of ``run`` (statusSummary of the arrays)."""
    found = dict.fromkeys(STATUSES, 0)
    for job in run.process_jobs:
        info = described.get(job.job_id, {})
        status = info.get("status", "SUBMITTED")
        if not job.is_array:
            found[status] = found.get(status, 0) + 1
            continue
        seen = 0
        for key, value in status_summary(info).items():
            if key in found:
                found[key] += int(value)
                seen += int(value)
        rest = job.size - seen
        if rest > 0:  # children not created yet: they share the parent's state
            found[status if status in QUEUED else "SUBMITTED"] += rest
    return found


def job_entries(runs: list[SubmittedRun], described: dict[str, dict]) -> list[dict]:
    """Each job of ``runs`` as ``status`` prints it: its submission's file, kind, id and status."""
    jobs = []
    for run in runs:
        name = run.jobs_url.rsplit("/", 1)[-1]
        for job in run.process_jobs:
            info = described.get(job.job_id, {})
            entry = {"file": name, "job": PROCESS_FOV, "jobId": job.job_id, "size": job.size,
                     "offset": job.offset, "status": info.get("status", "UNKNOWN")}
            if job.is_array:
                entry["statusSummary"] = status_summary(info)
            jobs.append(entry)
        if not run.merge_job_id:
            continue
        info = described.get(run.merge_job_id, {})
        jobs.append({"file": name, "job": MERGE, "jobId": run.merge_job_id,
                     "status": info.get("status", "UNKNOWN"),
                     **({"statusReason": info["statusReason"]} if info.get("statusReason") else {})})
    return jobs


def latest_container(job: dict) -> dict:
    """The job's container, overlaid with its last attempt's (exit code, reason, log stream)."""
    attempts = job.get("attempts") or []
    container = dict(job.get("container") or {})
    if attempts:
        last = attempts[-1].get("container") or {}
        container = {**container, **{k: v for k, v in last.items() if v is not None}}
    return container


# AWS Batch's documented container reason when the kernel killed the container for memory
# ("Troubleshooting AWS Batch": OutOfMemoryError: Container killed due to memory usage).
OUT_OF_MEMORY_REASONS = ("OutOfMemoryError: Container killed due to memory usage",)


def is_out_of_memory(job: dict) -> bool:
    """The job's last attempt was killed for using more memory than it asked for."""
    container = latest_container(job)
    attempts = job.get("attempts") or []
    texts = [container.get("reason"), job.get("statusReason"),
             attempts[-1].get("statusReason") if attempts else None]
    return any(t and any(r in t for r in OUT_OF_MEMORY_REASONS) for t in texts)


def time_limit_cause(status_reason: str | None) -> str | None:
    """What a cancellation by the queue's RUNNABLE time limit means, or None for any other reason."""
    if not status_reason or not status_reason.startswith(TIME_LIMIT_PREFIX):
        return None
    code = status_reason[len(TIME_LIMIT_PREFIX):].strip()
    cause = TIME_LIMIT_CAUSES.get(code, "AWS Batch could not start it")
    return (f"{status_reason} (it never started: it waited in RUNNABLE longer than the queue's time "
            f"limit, runnable_time_limit_seconds, because {cause})")


# AWS Batch's reason for an attempt it ended at its timeout (attemptDurationSeconds, which
# --fov-timeout sets), and moto's wording of the same.
TIMEOUT_REASONS = ("Job attempt duration exceeded timeout",
                   "Job time exceeded the configured attemptDurationSeconds")


def timeout_cause(job: dict, reason: str) -> str | None:
    """"timed out after N s" when the job's last attempt was ended at its attempt timeout."""
    if not any(r in reason for r in TIMEOUT_REASONS):
        return None
    seconds = (job.get("timeout") or {}).get("attemptDurationSeconds")
    return (f"timed out after {seconds} s (the job's attempt timeout, --fov-timeout or the job definition's "
            f"timeout_seconds: {reason})" if seconds else f"timed out (the job's attempt timeout: {reason})")


def failure_of(job: dict, fov: str | None, index: int | None) -> Failure:
    """The failure a FAILED job describes: its reason, exit code and log stream."""
    container = latest_container(job)
    attempts = job.get("attempts") or []
    reason = (job.get("statusReason") or (attempts[-1].get("statusReason") if attempts else None)
              or container.get("reason") or "no reason given")
    reason = time_limit_cause(reason) or timeout_cause(job, reason) or reason
    if container.get("reason") and container["reason"] not in reason:
        reason = f"{reason} ({container['reason']})"
    return Failure(fov=fov, index=index, reason=reason, exit_code=container.get("exitCode"),
                   job_id=job["jobId"], log=container.get("logStreamName"), attempts=len(attempts) or None,
                   out_of_memory=is_out_of_memory(job))


def child_index(job: dict) -> int:
    """An array child's index: ``arrayProperties.index``, else the ``<parent>:<i>`` job id."""
    index = (job.get("arrayProperties") or {}).get("index")
    if index is None:
        index = int(job["jobId"].rsplit(":", 1)[1])
    return int(index)


def is_running(job: dict) -> bool:
    """Started (itself, or any of its children): it must be terminated, not cancelled."""
    return job.get("status") in ACTIVE or any(status_summary(job).get(s) for s in ACTIVE)
