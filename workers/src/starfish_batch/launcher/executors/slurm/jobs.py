"""What one Slurm submission of a run put on the cluster, saved beside its manifest (``jobs.json``,
``jobs-resume-<n>.json``, as on AWS Batch) so that ``status``, ``cancel`` and ``--resume`` find
its jobs from any login node; and the job scripts it submitted."""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
from dataclasses import asdict, dataclass, field

from starfish_batch.core import storage
from starfish_batch.core.contract import ARRAY_INDEX_VAR, MERGE, PROCESS_FOV, worker_env
from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.core.manifest import Manifest
from starfish_batch.launcher.executors.batch.jobs import JOBS_FILE_RE, ProcessJob, chunks

EXECUTOR = "slurm"
SLURM_ARRAY_INDEX_VAR = "SLURM_ARRAY_TASK_ID"
JOB_NAME_RE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass
class SlurmSubmission:
    """The jobs of one submission (a run, one resume of it, or one out-of-memory escalation)."""

    run_id: str
    manifest_url: str
    jobs_url: str
    process_jobs: list[ProcessJob]  # arrays: FOV index = offset + SLURM_ARRAY_TASK_ID
    merge_job_id: str  # "" when nothing is merged (an estimate's sample)
    log_dir: str  # the folder every node writes the jobs' output to
    resources: dict = field(default_factory=dict)  # {"vcpus", "memory_mib", "time"}
    escalated_from: dict[str, str] = field(default_factory=dict)  # FOV -> the task that failed
    executor: str = EXECUTOR
    submitted_at: str = field(
        default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))

    @property
    def job_ids(self) -> list[str]:
        return [j.job_id for j in self.process_jobs] + ([self.merge_job_id] if self.merge_job_id else [])

    def locate(self, index: int) -> tuple[str, int]:
        """The (array job id, task id) that processes FOV ``index`` of this submission."""
        for job in self.process_jobs:
            if job.offset <= index < job.offset + job.size:
                return job.job_id, index - job.offset
        raise IndexError(index)

    def task_log(self, job_id: str, task: int) -> str:
        return f"{self.log_dir}/{PROCESS_FOV}-{job_id}_{task}.log"

    def merge_log(self) -> str:
        return f"{self.log_dir}/{MERGE}-{self.merge_job_id}.log"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str) -> SlurmSubmission:
        try:
            data = json.loads(text)
            if data.get("executor") != EXECUTOR:
                raise StarfishBatchError(f"{source} lists AWS Batch jobs, not Slurm jobs: "
                                         "give --executor batch (and its --tf-dir) instead")
            data["process_jobs"] = [ProcessJob(**j) for j in data["process_jobs"]]
            return cls(**data)
        except (ValueError, KeyError, TypeError) as exc:
            raise StarfishBatchError(f"{source} is not a starfish-batch Slurm jobs file: {exc}") from exc


def submissions(run_root: str, run_id: str) -> list[SlurmSubmission]:
    """Every Slurm submission of a run, oldest first."""
    names = [n for n in storage.list_names(run_root) if JOBS_FILE_RE.match(n)]
    names.sort(key=lambda n: int(JOBS_FILE_RE.match(n).group(2) or 0))
    found = [SlurmSubmission.from_json(storage.read_text(storage.join(run_root, n)), storage.join(run_root, n))
             for n in names]
    if not found:
        raise StarfishBatchError(f"run {run_id} has no jobs file under {run_root}: it was not submitted to Slurm")
    return found


def job_name(run_id: str, what: str) -> str:
    return JOB_NAME_RE.sub("-", f"starfish-{run_id}-{what}")[:200]


def array_parts(n_fovs: int, max_array_size: int) -> list[tuple[int, int]]:
    """(offset, size) of each array: task ids must stay below the cluster's MaxArraySize."""
    return chunks(n_fovs, max(1, max_array_size))


def job_script(what: str, command: list[str], manifest: Manifest, manifest_url: str, offset: int = 0) -> str:
    """The batch script of a process-fov array or of the merge: the contract's worker
    environment, then the worker's entry point, exactly as the local executor and AWS Batch
    start it. This is the one place Slurm's array task id becomes the worker's array index."""
    lines = ["#!/bin/bash", f"# starfish-batch {what}, run {manifest.run_id} (written by the launcher)", "set -u"]
    for name, value in worker_env(manifest_url, manifest.sha256, offset).items():
        lines.append(f"export {name}={shlex.quote(value)}")
    if what == PROCESS_FOV:
        lines.append(f'export {ARRAY_INDEX_VAR}="${{{SLURM_ARRAY_INDEX_VAR}}}"')
        lines.append(f'echo "--- {PROCESS_FOV} run {manifest.run_id}: array task ${{{SLURM_ARRAY_INDEX_VAR}}}, '
                     f'FOV index $(( {offset} + ${{{SLURM_ARRAY_INDEX_VAR}}} )) on $(hostname)"')
    lines.append("exec " + " ".join(shlex.quote(c) for c in command))
    return "\n".join(lines) + "\n"
