"""The AWS Batch executor: submit a run's jobs, follow them, show their state, cancel them.

One array job (a child per FOV; a plain job for a single FOV; several arrays of at most
10,000 children with ``FOV_INDEX_OFFSET`` beyond that) and a merge job that depends on all of
them. Queue, job definitions, region and log group come from the Terraform outputs
(``tf_outputs``). The job ids are recorded in the run folder (``jobs.json``, and
``jobs-resume-<n>.json`` for a resume), so ``status`` and ``cancel`` work from any machine.

This module knows AWS Batch and CloudWatch Logs, not starfish: the workers get the contract's
environment (``contract.worker_env``) and do the rest.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import TextIO

from starfish_batch import storage
from starfish_batch.contract import (
    JOBS_NAME,
    LOG_TAIL_LINES,
    MANIFEST_NAME,
    MERGE,
    MERGED_NAME,
    PROCESS_FOV,
    worker_env,
)
from starfish_batch.contract import LAUNCHER as PROG
from starfish_batch.errors import StarfishBatchError
from starfish_batch.launcher.tf_outputs import TfOutputs, read_outputs
from starfish_batch.manifest import Manifest

MAX_ARRAY_SIZE = 10_000
DESCRIBE_BATCH = 100
MAX_LOG_TAILS = 5
"""Failures whose log tail is printed in full; the others get their one-line reason."""
POLL_INITIAL_S = 2.0
POLL_MAX_S = 30.0
POLL_FACTOR = 1.5
RUN_ID_TAG = "starfish-batch:run-id"
JOB_TAG = "starfish-batch:job"
STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
QUEUED = ("SUBMITTED", "PENDING", "RUNNABLE")
ACTIVE = ("STARTING", "RUNNING")
TERMINAL = ("SUCCEEDED", "FAILED")
JOBS_FILE_RE = re.compile(r"^jobs(-resume-(\d+))?\.json$")
JOB_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


# ------------------------------------------------------------------------------------------
# What was submitted (the jobs file of a run)
# ------------------------------------------------------------------------------------------

@dataclass
class ProcessJob:
    """One submitted process-fov job: an array of ``size`` children, or a plain job (size 1)."""

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
    merge_job_id: str
    merge_job_name: str
    submitted_at: str = field(
        default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    )

    @property
    def job_ids(self) -> list[str]:
        return [j.job_id for j in self.process_jobs] + [self.merge_job_id]

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


def job_name(run_id: str, label: str) -> str:
    """A valid Batch job name (letters, digits, - and _, at most 128) from the run id."""
    name = re.sub(r"[^A-Za-z0-9_-]", "-", f"starfish-{run_id}-{label}")[:128]
    if not JOB_NAME_RE.match(name):  # pragma: no cover - run ids are [a-z0-9-]
        raise StarfishBatchError(f"cannot make a Batch job name from run id {run_id!r}")
    return name


def chunks(n_fovs: int, max_size: int = MAX_ARRAY_SIZE) -> list[tuple[int, int]]:
    """(offset, size) of each process-fov job: arrays of at most ``max_size`` children."""
    return [(offset, min(max_size, n_fovs - offset)) for offset in range(0, n_fovs, max_size)]


def _environment(manifest_url: str, offset: int) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in worker_env(manifest_url, offset).items()]


def _tf_flags(args) -> str:
    """The flags that find the same Terraform outputs again, for the commands we suggest."""
    if args is not None and getattr(args, "tf_outputs", None):
        return f" --tf-outputs {args.tf_outputs}"
    if args is not None and getattr(args, "tf_dir", None):
        return f" --tf-dir {args.tf_dir}"
    return ""


def _arn_region(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[3] if arn.startswith("arn:") and len(parts) > 5 else None


def _batched(items: list[str], n: int = DESCRIBE_BATCH) -> Iterable[list[str]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _client_error(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        err = response.get("Error", {})
        text = f"{err.get('Code', '')}: {err.get('Message', '')}".strip(": ")
        if text:
            return text
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


# ------------------------------------------------------------------------------------------
# Failures
# ------------------------------------------------------------------------------------------

@dataclass
class JobFailure:
    """A failed process-fov child (or plain job), or the failed merge, with its log tail."""

    fov: str | None
    index: int | None
    job_id: str
    reason: str
    exit_code: int | None
    log_stream: str | None
    tail: list[str] | None = None

    def headline(self) -> str:
        what = f"FOV {self.fov} (index {self.index})" if self.fov is not None else "merge"
        code = "none" if self.exit_code is None else str(self.exit_code)
        return f"{what} failed: {self.reason}; exit code {code}; job {self.job_id}"


def _latest_container(job: dict) -> dict:
    attempts = job.get("attempts") or []
    container = dict(job.get("container") or {})
    if attempts:
        last = attempts[-1].get("container") or {}
        container = {**container, **{k: v for k, v in last.items() if v is not None}}
    return container


def failure_of(job: dict, fov: str | None, index: int | None) -> JobFailure:
    container = _latest_container(job)
    attempts = job.get("attempts") or []
    reason = (job.get("statusReason") or (attempts[-1].get("statusReason") if attempts else None)
              or container.get("reason") or "no reason given")
    if container.get("reason") and container["reason"] not in reason:
        reason = f"{reason} ({container['reason']})"
    return JobFailure(fov=fov, index=index, job_id=job["jobId"], reason=reason,
                      exit_code=container.get("exitCode"),
                      log_stream=container.get("logStreamName"))


def child_index(job: dict) -> int:
    index = (job.get("arrayProperties") or {}).get("index")
    if index is None:
        index = int(job["jobId"].rsplit(":", 1)[1])
    return int(index)


# ------------------------------------------------------------------------------------------
# The executor
# ------------------------------------------------------------------------------------------

class BatchExecutor:
    """Submits, follows, shows and cancels the jobs of runs on the module's Batch queue."""

    def __init__(
        self,
        outputs: TfOutputs,
        job_queue: str | None = None,
        *,
        progress: bool = True,
        poll_initial: float = POLL_INITIAL_S,
        poll_max: float = POLL_MAX_S,
        sleep: Callable[[float], None] = time.sleep,
        out: TextIO | None = None,
        err: TextIO | None = None,
        session=None,
    ):
        self.outputs = outputs
        self.job_queue = job_queue or outputs.job_queue_arn
        self.progress = progress
        self.poll_initial = poll_initial
        self.poll_max = poll_max
        self.sleep = sleep
        self._out = out
        self._err = err
        self._session = session
        self._clients: dict[str, object] = {}

    # -- construction and clients ---------------------------------------------------------

    @classmethod
    def from_args(cls, args) -> BatchExecutor:
        """From the launcher's arguments; reads the Terraform outputs now (a clear error if absent).

        Without ``--results-url`` the run goes to the module's results bucket.
        """
        outputs = read_outputs(getattr(args, "tf_dir", None), getattr(args, "tf_outputs", None))
        if getattr(args, "allow_partial", False):
            raise StarfishBatchError(
                "--allow-partial applies to the local executor; on AWS Batch a failed FOV stops "
                "the merge: fix the recipe or data, then --resume RUN_ID"
            )
        if not getattr(args, "results_url", None):
            args.results_url = f"s3://{outputs.results_bucket}"
        # boto3 (also storage's S3 client) needs a region on a machine that has none configured.
        if not (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")):
            os.environ["AWS_DEFAULT_REGION"] = outputs.region
        return cls(outputs, getattr(args, "job_queue", None),
                   progress=not getattr(args, "quiet", False))

    @property
    def out(self) -> TextIO:
        return self._out or sys.stdout

    @property
    def err(self) -> TextIO:
        return self._err or sys.stderr

    def client(self, service: str):
        if service not in self._clients:
            import boto3

            session = self._session or boto3.session.Session()
            self._clients[service] = session.client(service, region_name=self.outputs.region)
        return self._clients[service]

    @property
    def batch(self):
        return self.client("batch")

    @property
    def logs(self):
        return self.client("logs")

    def _say(self, text: str) -> None:
        print(text, file=self.err, flush=True)

    # -- preflight ------------------------------------------------------------------------

    def preflight(self, manifest: Manifest) -> None:
        """Everything that can be checked before anything is uploaded or submitted."""
        if not storage.is_s3(manifest.results_url):
            raise StarfishBatchError(
                f"--results-url {manifest.results_url} is a local path: workers on AWS Batch run "
                f"in containers and cannot write it; use an s3:// URL, e.g. "
                f"s3://{self.outputs.results_bucket}"
            )
        if not manifest.experiment_url.startswith(("s3://", "https://", "http://")):
            raise StarfishBatchError(
                f"--experiment-url {manifest.experiment_url} is a local path: workers on AWS Batch "
                "cannot read it; upload the experiment to S3 (or serve it over https://) and pass "
                "that URL"
            )
        bucket = storage.split_s3(manifest.results_url)[0]
        if bucket != self.outputs.results_bucket:
            self._say(f"warning: results bucket {bucket} is not the module's results bucket "
                      f"{self.outputs.results_bucket}; the jobs' role may not be allowed to "
                      "write it")
        self.check_queue()
        self.check_job_definitions()

    def _check_region(self, what: str, arn: str) -> None:
        region = _arn_region(arn)
        if region is not None and region != self.outputs.region:
            raise StarfishBatchError(
                f"{what} {arn} is in region {region}, but the Terraform outputs "
                f"({self.outputs.source}) are for region {self.outputs.region}"
            )

    def check_queue(self) -> dict:
        """The queue exists in the outputs' region and is ENABLED and VALID."""
        queue = self.job_queue
        self._check_region("job queue", queue)
        try:
            found = self.batch.describe_job_queues(jobQueues=[queue]).get("jobQueues", [])
        except Exception as exc:
            raise StarfishBatchError(
                f"cannot describe job queue {queue} in {self.outputs.region}: {_client_error(exc)}"
            ) from exc
        found = [q for q in found if queue in (q.get("jobQueueArn"), q.get("jobQueueName"))]
        if not found:
            source = "--job-queue" if queue != self.outputs.job_queue_arn else self.outputs.source
            raise StarfishBatchError(
                f"job queue {queue} (from {source}) does not exist in region "
                f"{self.outputs.region}; check the name, or re-apply the Terraform module"
            )
        q = found[0]
        if q.get("state") != "ENABLED" or q.get("status") not in ("VALID", "UPDATING"):
            raise StarfishBatchError(
                f"job queue {queue} is {q.get('state')}/{q.get('status')} "
                f"({q.get('statusReason', 'no reason given')}); it must be ENABLED and VALID"
            )
        return q

    def check_job_definitions(self) -> None:
        """Both job definitions of the outputs exist (ACTIVE) in the outputs' region."""
        wanted = {
            "process_fov_job_definition_arn": self.outputs.process_fov_job_definition_arn,
            "merge_job_definition_arn": self.outputs.merge_job_definition_arn,
        }
        for name, arn in wanted.items():
            self._check_region(f"job definition {name}", arn)
        try:
            found = self.batch.describe_job_definitions(
                jobDefinitions=list(wanted.values())).get("jobDefinitions", [])
        except Exception as exc:
            raise StarfishBatchError(
                f"cannot describe job definitions in {self.outputs.region}: {_client_error(exc)}"
            ) from exc
        active = {d.get("jobDefinitionArn") for d in found if d.get("status", "ACTIVE") == "ACTIVE"}
        for name, arn in wanted.items():
            if arn not in active:
                raise StarfishBatchError(
                    f"job definition {arn} ({name} in {self.outputs.source}) does not exist or is "
                    f"not ACTIVE in region {self.outputs.region}; re-apply the Terraform module"
                )

    # -- submission -----------------------------------------------------------------------

    def process_requests(self, manifest: Manifest, manifest_url: str,
                         label: str = "") -> list[dict]:
        """The ``submit_job`` requests of the process-fov jobs of ``manifest`` (none if no FOV)."""
        parts = chunks(len(manifest.fovs))
        requests = []
        for k, (offset, size) in enumerate(parts):
            suffix = f"-part{k + 1}" if len(parts) > 1 else ""
            request = {
                "jobName": job_name(manifest.run_id, f"{label}{PROCESS_FOV}{suffix}"),
                "jobQueue": self.job_queue,
                "jobDefinition": self.outputs.process_fov_job_definition_arn,
                "containerOverrides": {"environment": _environment(manifest_url, offset)},
                "tags": {RUN_ID_TAG: manifest.run_id, JOB_TAG: PROCESS_FOV},
                "propagateTags": True,
            }
            if size > 1:
                request["arrayProperties"] = {"size": size}
            requests.append(request)
        return requests

    def merge_request(self, manifest: Manifest, manifest_url: str, depends_on: list[str],
                      label: str = "") -> dict:
        request = {
            "jobName": job_name(manifest.run_id, f"{label}merge"),
            "jobQueue": self.job_queue,
            "jobDefinition": self.outputs.merge_job_definition_arn,
            "containerOverrides": {"environment": _environment(manifest_url, 0)},
            "tags": {RUN_ID_TAG: manifest.run_id, JOB_TAG: MERGE},
            "propagateTags": True,
        }
        if depends_on:  # a resume with nothing left to process only merges
            request["dependsOn"] = [{"jobId": job_id} for job_id in depends_on]
        return request

    def submit(self, manifest: Manifest, manifest_url: str) -> SubmittedRun:
        """Submit the process-fov job(s) and the merge, then record their ids beside the manifest.

        If a submission fails part way, the jobs already submitted are cancelled.
        """
        jobs_url = jobs_url_for(manifest_url)
        if storage.exists(jobs_url):
            raise StarfishBatchError(
                f"{jobs_url} already exists: this manifest was submitted before")
        match = re.search(r"-resume-(\d+)\.json$", jobs_url)
        label = f"resume{match.group(1)}-" if match else ""
        submitted: list[str] = []
        process_jobs: list[ProcessJob] = []
        try:
            requests = self.process_requests(manifest, manifest_url, label)
            for (offset, size), request in zip(chunks(len(manifest.fovs)), requests, strict=True):
                job_id = self._submit(request)
                submitted.append(job_id)
                process_jobs.append(ProcessJob(job_id, request["jobName"], offset, size))
            merge = self.merge_request(manifest, manifest_url, submitted, label)
            merge_id = self._submit(merge)
            submitted.append(merge_id)
        except BaseException:
            for job_id in submitted:
                try:
                    self.batch.cancel_job(jobId=job_id, reason="starfish-batch: submission failed")
                except Exception:  # noqa: BLE001 - best effort; the original error matters
                    pass
            raise
        run = SubmittedRun(
            run_id=manifest.run_id, manifest_url=manifest_url, jobs_url=jobs_url,
            region=self.outputs.region, job_queue=self.job_queue, process_jobs=process_jobs,
            merge_job_id=merge_id, merge_job_name=merge["jobName"],
        )
        try:
            storage.write_text(jobs_url, run.to_json())
        except StarfishBatchError as exc:
            self._say(f"warning: {exc}; the jobs are submitted: {' '.join(run.job_ids)}")
        return run

    def _submit(self, request: dict) -> str:
        try:
            return self.batch.submit_job(**request)["jobId"]
        except Exception as exc:
            raise StarfishBatchError(
                f"cannot submit job {request['jobName']} to {request['jobQueue']}: "
                f"{_client_error(exc)}"
            ) from exc

    # -- launch ---------------------------------------------------------------------------

    def launch(self, manifest: Manifest, manifest_url: str, args=None) -> int:
        run = self.submit(manifest, manifest_url)
        self._say(self._submitted_text(manifest, run))
        if args is not None and getattr(args, "no_wait", False):
            print(f"run_id {run.run_id}", file=self.out)
            for job in run.process_jobs:
                print(f"{PROCESS_FOV} {job.job_id}", file=self.out)
            print(f"{MERGE} {run.merge_job_id}", file=self.out)
            self.out.flush()
            return 0
        return self.follow(manifest, run, args)

    def _submitted_text(self, manifest: Manifest, run: SubmittedRun) -> str:
        lines = [f"submitted run {run.run_id} to {run.job_queue}:"]
        for job in run.process_jobs:
            kind = f"array of {job.size}" if job.is_array else "1 FOV"
            lines.append(f"  {PROCESS_FOV} {job.job_id} ({kind}, FOVs {job.offset} to "
                         f"{job.offset + job.size - 1})")
        lines.append(f"  {MERGE} {run.merge_job_id} (after "
                     f"{len(run.process_jobs)} process-fov job(s))")
        lines.append(f"  job ids saved in {run.jobs_url}")
        return "\n".join(lines)

    def _hint_args(self, run_id: str, args) -> str:
        return f"{run_id} --results-url {self._results_url_of(args)}{_tf_flags(args)}"

    def _results_url_of(self, args) -> str:
        url = getattr(args, "results_url", None) if args is not None else None
        return url or f"s3://{self.outputs.results_bucket}"

    # -- describing -----------------------------------------------------------------------

    def describe(self, job_ids: list[str]) -> dict[str, dict]:
        """``describe_jobs`` on any number of ids, 100 a call."""
        found: dict[str, dict] = {}
        for batch in _batched(list(dict.fromkeys(job_ids))):
            for job in self.batch.describe_jobs(jobs=batch).get("jobs", []):
                found[job["jobId"]] = job
        return found

    def failed_children(self, parent_id: str) -> list[str]:
        ids: list[str] = []
        for page in self.batch.get_paginator("list_jobs").paginate(
                arrayJobId=parent_id, jobStatus="FAILED"):
            ids.extend(j["jobId"] for j in page.get("jobSummaryList", []))
        return ids

    def counts(self, run: SubmittedRun, described: dict[str, dict]) -> dict[str, int]:
        """FOVs per status over the process-fov jobs of ``run`` (statusSummary of the arrays)."""
        counts = dict.fromkeys(STATUSES, 0)
        for job in run.process_jobs:
            info = described.get(job.job_id, {})
            status = info.get("status", "SUBMITTED")
            if not job.is_array:
                counts[status] = counts.get(status, 0) + 1
                continue
            summary = (info.get("arrayProperties") or {}).get("statusSummary") or {}
            seen = 0
            for key, value in summary.items():
                if key in counts:
                    counts[key] += int(value)
                    seen += int(value)
            rest = job.size - seen
            if rest > 0:  # children not created yet: they share the parent's state
                counts[status if status in QUEUED else "SUBMITTED"] += rest
        return counts

    def failures(self, manifest: Manifest, run: SubmittedRun, described: dict[str, dict],
                 known: set[str] | None = None) -> list[JobFailure]:
        """Failed process-fov children (or plain jobs) of ``run`` not in ``known``, by FOV."""
        known = known if known is not None else set()
        found: list[JobFailure] = []
        for job in run.process_jobs:
            info = described.get(job.job_id, {})
            if not job.is_array:
                if info.get("status") == "FAILED" and job.job_id not in known:
                    found.append(failure_of(info, manifest.fovs[job.offset], job.offset))
                continue
            summary = (info.get("arrayProperties") or {}).get("statusSummary") or {}
            if not summary.get("FAILED"):
                continue
            new = [i for i in self.failed_children(job.job_id) if i not in known]
            for child in self.describe(new).values():
                index = job.offset + child_index(child)
                fov = manifest.fovs[index] if index < len(manifest.fovs) else f"#{index}"
                found.append(failure_of(child, fov, index))
        found.sort(key=lambda f: (f.index is None, f.index))
        return found

    def log_tail(self, stream: str | None, lines: int = LOG_TAIL_LINES) -> list[str]:
        """The last ``lines`` messages of a job's CloudWatch log stream (one line if unreadable)."""
        group = self.outputs.log_group_name or "/aws/batch/job"
        if not stream:
            return ["(no log stream: the container did not start; see the reason above)"]
        try:
            events = self.logs.get_log_events(logGroupName=group, logStreamName=stream,
                                              limit=lines, startFromHead=False).get("events", [])
        except Exception as exc:
            return [f"(cannot read log {group} {stream}: {_client_error(exc)})"]
        out: list[str] = []
        for event in events:
            out.extend(str(event.get("message", "")).rstrip("\n").splitlines() or [""])
        return out[-lines:] or [f"(log stream {group} {stream} is empty)"]

    def print_failures(self, failures: list[JobFailure], shown_tails: int = 0) -> int:
        """Print failures (log tails for the first few); returns how many tails were printed."""
        group = self.outputs.log_group_name
        for failure in failures:
            self._say(f"{PROG}: {failure.headline()}")
            if shown_tails < MAX_LOG_TAILS:
                shown_tails += 1
                tail = failure.tail
                if tail is None:
                    tail = self.log_tail(failure.log_stream)
                if failure.log_stream:
                    self._say(f"  last lines of log {group} {failure.log_stream}:")
                for line in tail:
                    self._say(f"  | {line}")
        return shown_tails

    # -- follow ---------------------------------------------------------------------------

    def follow(self, manifest: Manifest, run: SubmittedRun, args=None) -> int:
        """Follow the jobs until the merge ends (0: merged) or a FOV fails (1); Ctrl-C: 130."""
        from tqdm import tqdm

        total = len(manifest.fovs)
        bar = tqdm(total=total, desc="FOVs", unit="fov", disable=not self.progress,
                   file=self.err, dynamic_ncols=True)
        known: set[str] = set()
        failures: list[JobFailure] = []
        tails = 0
        delay = self.poll_initial
        try:
            while True:
                described = self.describe(run.job_ids)
                counts = self.counts(run, described)
                done = counts["SUCCEEDED"] + counts["FAILED"]
                bar.n = done
                bar.set_postfix(queued=sum(counts[s] for s in QUEUED),
                                running=sum(counts[s] for s in ACTIVE),
                                failed=counts["FAILED"], refresh=False)
                bar.refresh()
                if counts["FAILED"] > len(failures):
                    new = self.failures(manifest, run, described, known)
                    known.update(f.job_id for f in new)
                    failures.extend(new)
                    bar.clear()
                    tails = self.print_failures(new, tails)
                merge = described.get(run.merge_job_id, {})
                merge_status = merge.get("status")
                if merge_status == "SUCCEEDED":
                    bar.close()
                    return self._merged(manifest)
                if merge_status == "FAILED":
                    bar.close()
                    return self._merge_failed(manifest, run, merge, failures, args)
                if failures and done >= total:
                    bar.close()
                    return self._not_merging(manifest, run, failures, args)
                self.sleep(delay)
                delay = min(delay * POLL_FACTOR, self.poll_max)
        except KeyboardInterrupt:
            bar.close()
            hint = self._hint_args(run.run_id, args)
            self._say(
                f"\nstopped following run {run.run_id}; its jobs keep running on AWS Batch.\n"
                f"follow it:  {PROG} status {hint}\n"
                f"cancel it:  {PROG} cancel {hint}"
            )
            return 130
        finally:
            bar.close()

    def _merged(self, manifest: Manifest) -> int:
        merged = storage.join(manifest.run_root, MERGED_NAME)
        if not storage.exists(merged):
            self._say(f"{PROG}: error: the merge job succeeded but {merged} does not exist")
            return 1
        print(f"merged: {merged}", file=self.out, flush=True)
        return 0

    def _merge_failed(self, manifest: Manifest, run: SubmittedRun, merge: dict,
                      failures: list[JobFailure], args) -> int:
        if failures:
            return self._not_merging(manifest, run, failures, args)
        failure = failure_of(merge, None, None)
        self.print_failures([failure])
        self._say(f"{PROG}: error: the merge failed; outputs are kept under {manifest.run_root}; "
                  f"retry with: {self._resume_hint(manifest, args)}")
        return 1

    def _not_merging(self, manifest: Manifest, run: SubmittedRun, failures: list[JobFailure],
                     args) -> int:
        names = ", ".join(f.fov or "?" for f in failures[:20])
        more = f" and {len(failures) - 20} more" if len(failures) > 20 else ""
        self._say(
            f"{PROG}: error: {len(failures)} of {len(manifest.fovs)} FOVs failed ({names}{more}); "
            f"the merge job {run.merge_job_id} does not run.\n"
            f"Fix the recipe or data, then: {self._resume_hint(manifest, args)}"
        )
        return 1

    def _resume_hint(self, manifest: Manifest, args) -> str:
        return (f"{PROG} --executor batch --resume {manifest.run_id} "
                f"--results-url {manifest.results_url}{_tf_flags(args)}")

    # -- status and cancel ----------------------------------------------------------------

    def submissions(self, manifest: Manifest) -> list[SubmittedRun]:
        """Every submission of a run (``jobs.json``, then its resumes), oldest first."""
        names = [n for n in storage.list_names(manifest.run_root) if JOBS_FILE_RE.match(n)]
        names.sort(key=lambda n: int(JOBS_FILE_RE.match(n).group(2) or 0))
        runs = []
        for name in names:
            url = storage.join(manifest.run_root, name)
            runs.append(SubmittedRun.from_json(storage.read_text(url), url))
        if not runs:
            raise StarfishBatchError(
                f"run {manifest.run_id} has no jobs file under {manifest.run_root}: "
                "it was not submitted to AWS Batch"
            )
        return runs

    def _load(self, run_id: str, args) -> tuple[Manifest, list[SubmittedRun]]:
        from starfish_batch.launcher.runs import load_run

        manifest = load_run(self._results_url_of(args), run_id)
        return manifest, self.submissions(manifest)

    def status(self, run_id: str, args=None) -> int:
        """Print the state of a run (JSON on stdout, failures on stderr); 0 when it is merged."""
        from starfish_batch.launcher.runs import progress

        manifest, runs = self._load(run_id, args)
        described = self.describe([i for r in runs for i in r.job_ids])
        jobs = []
        for run in runs:
            name = run.jobs_url.rsplit("/", 1)[-1]
            for job in run.process_jobs:
                info = described.get(job.job_id, {})
                entry = {"file": name, "job": PROCESS_FOV, "jobId": job.job_id,
                         "size": job.size, "offset": job.offset,
                         "status": info.get("status", "UNKNOWN")}
                if job.is_array:
                    entry["statusSummary"] = (info.get("arrayProperties") or {}).get(
                        "statusSummary", {})
                jobs.append(entry)
            info = described.get(run.merge_job_id, {})
            jobs.append({"file": name, "job": MERGE, "jobId": run.merge_job_id,
                         "status": info.get("status", "UNKNOWN"),
                         **({"statusReason": info["statusReason"]}
                            if info.get("statusReason") else {})})
        latest = runs[-1]
        latest_manifest = (manifest if latest.manifest_url.endswith(f"/{MANIFEST_NAME}")
                           else Manifest.load(latest.manifest_url))
        counts = self.counts(latest, described)
        failures = self.failures(latest_manifest, latest, described)
        state = progress(manifest)
        merged = state["merged"]
        print(json.dumps({
            **state,
            "latest_submission": latest.jobs_url,
            "latest_counts": counts,
            "failed_fovs": [f.fov for f in failures],
            "jobs": jobs,
        }, indent=2), file=self.out, flush=True)
        if failures:
            self.print_failures(failures)
            self._say(f"resume with: {self._resume_hint(manifest, args)}")
        if merged:
            self._say(f"merged: {storage.join(manifest.run_root, MERGED_NAME)}")
        return 0 if merged else 1

    def cancel(self, run_id: str, args=None) -> int:
        """Terminate the running jobs of a run and cancel its queued ones (merge first)."""
        _, runs = self._load(run_id, args)
        reason = f"cancelled with `{PROG} cancel {run_id}`"
        ids = [i for run in runs for i in [run.merge_job_id, *(j.job_id for j in run.process_jobs)]]
        described = self.describe(ids)
        terminated, cancelled = [], []
        for job_id in ids:
            info = described.get(job_id)
            if info is None or info.get("status") in TERMINAL:
                continue
            summary = (info.get("arrayProperties") or {}).get("statusSummary") or {}
            running = info.get("status") in ACTIVE or any(summary.get(s) for s in ACTIVE)
            try:
                if running:
                    # TerminateJob also cancels what has not started (children of an array too).
                    self.batch.terminate_job(jobId=job_id, reason=reason)
                    terminated.append(job_id)
                else:
                    self.batch.cancel_job(jobId=job_id, reason=reason)
                    cancelled.append(job_id)
            except Exception as exc:
                raise StarfishBatchError(
                    f"cannot cancel job {job_id}: {_client_error(exc)}") from exc
        if not terminated and not cancelled:
            self._say(f"nothing to cancel: every job of run {run_id} has finished")
            return 0
        for job_id in terminated:
            print(f"terminated {job_id}", file=self.out)
        for job_id in cancelled:
            print(f"cancelled {job_id}", file=self.out)
        self.out.flush()
        self._say(f"run {run_id}: {len(terminated)} job(s) terminated, {len(cancelled)} cancelled; "
                  f"outputs written so far are kept; continue later with --resume {run_id}")
        return 0
