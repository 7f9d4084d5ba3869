"""Reading what ``squeue`` and ``sacct`` print about a run's jobs: pure functions over their
documented ``--parsable``/``-o`` text, one line a job or array task."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Job state codes (squeue(1), sacct(1), "JOB STATE CODES").
QUEUED = frozenset({"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"})
ACTIVE = frozenset({"RUNNING", "CONFIGURING", "COMPLETING", "STAGE_OUT", "SIGNALING", "RESIZING",
                    "SUSPENDED", "STOPPED"})
SUCCEEDED = "COMPLETED"
FAILED = frozenset({"FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "CANCELLED",
                    "BOOT_FAIL", "DEADLINE", "SPECIAL_EXIT", "REVOKED"})
RETRYABLE = frozenset({"NODE_FAIL", "PREEMPTED", "BOOT_FAIL"})
"""The machine failed, not the FOV: resubmitted as it was."""
OUT_OF_MEMORY = "OUT_OF_MEMORY"
# What a job's output says when Slurm killed it for memory another way: the cgroup's OOM killer
# noticed by slurmstepd, or JobAcctGatherParams=OverMemoryKill (the job then ends FAILED).
OUT_OF_MEMORY_LINES = ("oom-kill event", "Exceeded job memory limit", "Exceeded step memory limit")

SQUEUE_FORMAT = "%i|%T|%r|%M|%C"
SACCT_FORMAT = "JobID,State,Reason,Elapsed,AllocCPUS,ExitCode"


@dataclass
class JobState:
    """One job, or one task of an array (``task`` not None), as Slurm reports it now."""

    job_id: str  # the array's id for a task, else the job's
    task: int | None
    state: str
    reason: str = ""
    seconds: float = 0.0
    cpus: int = 0
    exit_code: int | None = None

    @property
    def name(self) -> str:
        """``<array id>_<task>`` (what Slurm's commands and log names use), or the job id."""
        return self.job_id if self.task is None else f"{self.job_id}_{self.task}"

    @property
    def ended(self) -> bool:
        return self.state == SUCCEEDED or self.state in FAILED

    @property
    def failed(self) -> bool:
        return self.state in FAILED


def base_state(text: str) -> str:
    """``CANCELLED by 1000`` -> ``CANCELLED``; ``RUNNING+`` -> ``RUNNING``."""
    return (text.strip().split() or ["UNKNOWN"])[0].rstrip("+")


def seconds(text: str) -> float:
    """``[D-][HH:]MM:SS[.mmm]`` (Slurm's elapsed and time-used format) in seconds; 0 if none."""
    text = text.strip()
    days = 0
    if "-" in text:
        head, text = text.split("-", 1)
        days = int(head) if head.isdigit() else 0
    try:
        parts = [float(p) for p in text.split(":")]
    except ValueError:
        return 0.0
    total = 0.0
    for part in parts:
        total = total * 60 + part
    return days * 86400 + total


def tasks_of(spec: str) -> list[int]:
    """``0-5,7,9-11%2`` -> the task ids (the ``%`` limit dropped)."""
    found: list[int] = []
    for part in spec.split("%", 1)[0].split(","):
        if "-" in part:
            start, stop = part.split("-", 1)
            found.extend(range(int(start), int(stop) + 1))
        elif part.strip():
            found.append(int(part))
    return found


_JOB_ID = re.compile(r"^(\d+)(?:_(\d+|\[[0-9,\-%]+\]))?$")


def _exit_code(text: str) -> int | None:
    """``2:0`` (exit status : signal) -> 2; a signal alone -> 128 + signal, as a shell says;
    none for Slurm's own codes past the signals (``0:125`` of a job killed for memory)."""
    code, _, signal = text.strip().partition(":")
    if not code.isdigit():
        return None
    if int(code) == 0 and signal.isdigit() and int(signal):
        return 128 + int(signal) if int(signal) <= 64 else None
    return int(code)


def _parse(line: str, fields: int) -> list[JobState]:
    parts = line.rstrip("\n").split("|")
    if len(parts) < fields:
        return []
    match = _JOB_ID.match(parts[0].strip())
    if not match:
        return []  # a job step (12_3.batch) or a kind of job a run does not submit
    job_id, task = match.group(1), match.group(2)
    state = base_state(parts[1])
    reason = parts[2].strip()
    common = {"state": state, "reason": "" if reason in ("None", "(null)") else reason,
              "seconds": seconds(parts[3]), "cpus": int(parts[4]) if parts[4].strip().isdigit() else 0,
              "exit_code": _exit_code(parts[5]) if len(parts) > 5 else None}
    if task is None:
        return [JobState(job_id, None, **common)]
    if task.startswith("["):
        return [JobState(job_id, t, **common) for t in tasks_of(task[1:-1])]
    return [JobState(job_id, int(task), **common)]


def parse_squeue(text: str) -> list[JobState]:
    """``squeue -h -r -t all -o SQUEUE_FORMAT`` output."""
    return [s for line in text.splitlines() if line.strip() for s in _parse(line, 5)]


def parse_sacct(text: str) -> list[JobState]:
    """``sacct -X -n -P --format=SACCT_FORMAT`` output (pending array tasks come as one
    ``<id>_[0-99%4]`` line, expanded here)."""
    return [s for line in text.splitlines() if line.strip() for s in _parse(line, 6)]


def parse_show_job(text: str) -> dict[str, dict[str, str]]:
    """``scontrol -o show job <id>`` (one line per job or array task) -> ``{name: fields}``,
    ``name`` being ``<array id>_<task>`` for a task."""
    found: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        if "JobId" not in fields:
            continue
        task = fields.get("ArrayTaskId")
        name = f"{fields['ArrayJobId']}_{task}" if task and task.isdigit() and "ArrayJobId" in fields \
            else fields["JobId"]
        found[name] = fields
    return found


def exit_code_of(fields: dict[str, str]) -> int | None:
    return _exit_code(fields.get("ExitCode", ""))


def mentions_out_of_memory(lines: list[str] | None) -> bool:
    return any(marker in line for line in lines or [] for marker in OUT_OF_MEMORY_LINES)
