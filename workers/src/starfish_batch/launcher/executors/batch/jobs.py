"""What one submission put on the queue, saved beside its manifest so that ``status``,
``cancel`` and ``--resume`` work from any machine."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import asdict, dataclass, field

from starfish_batch.core import storage
from starfish_batch.core.contract import JOBS_NAME, MANIFEST_NAME
from starfish_batch.core.errors import StarfishBatchError

MAX_ARRAY_SIZE = 10_000  # AWS Batch's largest array; beyond it, several arrays with an offset
RUN_ID_TAG = "starfish-batch:run-id"
JOB_TAG = "starfish-batch:job"
# The submitter's aws:userid (sts GetCallerIdentity's UserId): the module's submitter policy lets
# a caller cancel only jobs carrying their own (Terraform: iam.tf local.submitter_tag).
SUBMITTER_TAG = "starfish-batch:submitter"
JOBS_FILE_RE = re.compile(r"^jobs(-resume-(\d+))?\.json$")
JOB_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


@dataclass
class ProcessJob:
    """One submitted process-fov job: an array of ``size`` children, or a plain job (size 1);
    ``offset`` is its first child's job index (a FOV index when each child runs one FOV)."""

    job_id: str
    job_name: str
    offset: int
    size: int

    @property
    def is_array(self) -> bool:
        return self.size > 1


@dataclass
class SubmittedRun:
    """The jobs of one submission (a run, or one resume of it), as saved beside its manifest."""

    run_id: str
    manifest_url: str
    jobs_url: str
    region: str
    job_queue: str
    process_jobs: list[ProcessJob]
    merge_job_id: str  # "" for an estimate's sample, which merges nothing
    merge_job_name: str
    submitted_at: str = field(
        default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    )
    resources: dict[str, float] | None = None
    """An out-of-memory escalation's process-fov size ({"vcpus", "memory_mib"}) through
    containerOverrides; None: the job definition's."""
    escalated_from: dict[str, str] = field(default_factory=dict)
    """For an escalation: each FOV resubmitted -> the job id that ran out of memory."""
    fovs_per_job: int = 1
    """FOVs each child runs (its manifest's): the offsets and sizes above count children."""

    @property
    def job_ids(self) -> list[str]:
        return [j.job_id for j in self.process_jobs] + ([self.merge_job_id] if self.merge_job_id else [])

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str) -> SubmittedRun:
        try:
            data = json.loads(text)
            data["process_jobs"] = [ProcessJob(**j) for j in data["process_jobs"]]
            return cls(**data)
        except (ValueError, KeyError, TypeError) as exc:
            raise StarfishBatchError(f"{source} is not a starfish-batch jobs file: {exc}") from exc


def jobs_url_for(manifest_url: str) -> str:
    """``jobs.json`` beside ``manifest.json``, ``jobs-resume-<n>.json`` beside
    ``manifest-resume-<n>.json``."""
    parent, name = manifest_url.rstrip("/").rsplit("/", 1)
    if name == MANIFEST_NAME:
        return storage.join(parent, JOBS_NAME)
    match = re.fullmatch(r"manifest-resume-(\d+)\.json", name)
    if match:
        return storage.join(parent, f"jobs-resume-{match.group(1)}.json")
    raise StarfishBatchError(f"cannot name the jobs file of manifest {manifest_url}")


def submission_label(jobs_url: str) -> str:
    """``resume<n>-`` for the jobs of a resume, so their names say which submission they are."""
    match = re.search(r"-resume-(\d+)\.json$", jobs_url)
    return f"resume{match.group(1)}-" if match else ""


def job_name(run_id: str, label: str) -> str:
    """A valid Batch job name (letters, digits, - and _, at most 128) from the run id."""
    name = re.sub(r"[^A-Za-z0-9_-]", "-", f"starfish-{run_id}-{label}")[:128]
    if not JOB_NAME_RE.match(name):  # pragma: no cover - run ids are [a-z0-9-]
        raise StarfishBatchError(f"cannot make a Batch job name from run id {run_id!r}")
    return name


def chunks(n_fovs: int, max_size: int = MAX_ARRAY_SIZE) -> list[tuple[int, int]]:
    """(offset, size) of each process-fov job: arrays of at most ``max_size`` children."""
    return [(offset, min(max_size, n_fovs - offset)) for offset in range(0, n_fovs, max_size)]


def submissions(run_root: str, run_id: str) -> list[SubmittedRun]:
    """Every submission of a run (``jobs.json``, then its resumes), oldest first."""
    names = [n for n in storage.list_names(run_root) if JOBS_FILE_RE.match(n)]
    names.sort(key=lambda n: int(JOBS_FILE_RE.match(n).group(2) or 0))
    runs = [SubmittedRun.from_json(storage.read_text(storage.join(run_root, n)), storage.join(run_root, n))
            for n in names]
    if not runs:
        raise StarfishBatchError(
            f"run {run_id} has no jobs file under {run_root}: it was not submitted to AWS Batch")
    return runs
