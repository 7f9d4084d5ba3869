"""The AWS calls of a Batch run: check, submit, follow, describe and cancel; never prints.

What it finds is returned as objects (``SubmittedRun``, ``FollowOutcome``, ``Failure``) or
handed to an ``Observer`` (``executors.base``) while following, so the CLI and the console
decide what a scientist reads and which exit code a run ends with. The parts are collaborators:
``clients`` (the AWS clients, describe and cancel calls), ``failures`` (which FOVs failed, and
their log tails), ``accounting`` (what a run used and costs) and ``follow`` (the follow loop).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starfish_batch.core import storage
from starfish_batch.core.contract import LAUNCHER, MANIFEST_NAME
from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.core.manifest import Manifest
from starfish_batch.launcher.executors.base import Observer, SilentObserver
from starfish_batch.launcher.executors.batch import checks, watch
from starfish_batch.launcher.executors.batch.accounting import BatchAccounting
from starfish_batch.launcher.executors.batch.checks import client_error
from starfish_batch.launcher.executors.batch.clients import BatchClients
from starfish_batch.launcher.executors.batch.failures import BatchFailures
from starfish_batch.launcher.executors.batch.follow import BatchFollow
from starfish_batch.launcher.executors.batch.jobs import (
    ProcessJob,
    SubmittedRun,
    chunks,
    jobs_url_for,
    submission_label,
)
from starfish_batch.launcher.executors.batch.requests import JobTarget, merge_request, process_requests
from starfish_batch.launcher.outcome import Failure, FollowOutcome
from starfish_batch.launcher.pricing import Bill
from starfish_batch.launcher.tf_outputs import TfOutputs

POLL_INITIAL_S = 2.0
POLL_MAX_S = 30.0


class BatchExecutor:
    """Submits, follows, describes and cancels the jobs of runs on the module's Batch queue."""

    def __init__(self, outputs: TfOutputs, job_queue: str | None = None, *,
                 poll_initial: float = POLL_INITIAL_S, poll_max: float = POLL_MAX_S,
                 sleep: Callable[[float], None] = time.sleep, session=None,
                 clock: Callable[[], float] = time.monotonic, stuck_after: float = watch.STUCK_AFTER_SECONDS,
                 fov_timeout: int | None = None):
        self.outputs = outputs
        self.fov_timeout = fov_timeout  # each process-fov attempt's timeout (attemptDurationSeconds)
        self.clock = clock
        self.stuck_after = stuck_after
        self.job_queue = job_queue or outputs.job_queue_arn
        self.poll_initial = poll_initial
        self.poll_max = poll_max
        self.sleep = sleep
        self.aws = BatchClients(outputs, session)
        self.reader = BatchFailures(self.aws)
        self.accounting = BatchAccounting(self.aws, self.job_queue)
        self._submitter: str | None = None

    @property
    def submitter(self) -> str:
        """The caller's aws:userid (``sts get-caller-identity``'s UserId), tagged on every job."""
        if self._submitter is None:
            try:
                self._submitter = self.client("sts").get_caller_identity()["UserId"]
            except Exception as exc:
                raise StarfishBatchError(
                    f"cannot tell who is submitting (sts GetCallerIdentity): {client_error(exc)}"
                ) from exc
        return self._submitter

    @property
    def target(self) -> JobTarget:
        share = self.outputs.extra.get("share_identifier")
        return JobTarget(self.job_queue, self.outputs.process_fov_job_definition_arn,
                         self.outputs.merge_job_definition_arn, submitter=self.submitter,
                         share_identifier=share if isinstance(share, str) and share else None,
                         attempt_seconds=self.fov_timeout)

    def client(self, service: str):
        """One client per service, in the outputs' region, with the storage layer's retries."""
        return self.aws.client(service)

    @property
    def batch(self):
        return self.aws.batch

    def preflight(self, manifest: Manifest) -> list[str]:
        """Everything that can be checked before anything is uploaded or submitted; returns warnings."""
        return checks.preflight(self.batch, self.outputs, self.job_queue, manifest)

    # -- submission -----------------------------------------------------------------------

    def submit(self, manifest: Manifest, manifest_url: str,
               observer: Observer | None = None, merge: bool = True,
               resources: dict[str, float] | None = None,
               escalated_from: dict[str, str] | None = None) -> SubmittedRun:
        """Submit the process-fov job(s) and the merge, then record their ids beside the manifest.

        ``merge=False`` submits no merge (an estimate's sample: the run merges when resumed).
        If a submission fails part way, the jobs already submitted are cancelled.
        """
        observer = observer or SilentObserver()
        jobs_url = jobs_url_for(manifest_url)
        if storage.exists(jobs_url):
            raise StarfishBatchError(f"{jobs_url} already exists: this manifest was submitted before")
        label = submission_label(jobs_url)
        submitted: list[str] = []
        process_jobs: list[ProcessJob] = []
        try:
            fov_timeout = (self.job_size(self.outputs.process_fov_job_definition_arn)["timeout_seconds"]
                           if manifest.fovs_per_job > 1 else None)
            requests = process_requests(manifest, manifest_url, self.target, label, resources, fov_timeout)
            for (offset, size), request in zip(chunks(manifest.n_jobs), requests, strict=True):
                job_id = self._submit(request)
                submitted.append(job_id)
                process_jobs.append(ProcessJob(job_id, request["jobName"], offset, size))
            merge_id, merge_name = "", ""
            if merge:
                request = merge_request(manifest, manifest_url, self.target, submitted, label)
                merge_id, merge_name = self._submit(request), request["jobName"]
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
            merge_job_id=merge_id, merge_job_name=merge_name,
            resources=resources, escalated_from=dict(escalated_from or {}),
            fovs_per_job=manifest.fovs_per_job,
        )
        try:
            storage.write_text(jobs_url, run.to_json())
        except StarfishBatchError as exc:
            observer.warn(f"warning: {exc}; the jobs are submitted: {' '.join(run.job_ids)}")
        return run

    def _submit(self, request: dict) -> str:
        try:
            return self.batch.submit_job(**request)["jobId"]
        except Exception as exc:
            raise StarfishBatchError(
                f"cannot submit job {request['jobName']} to {request['jobQueue']}: {client_error(exc)}"
            ) from exc

    # -- describing: the collaborators' calls the commands and tests use ----------------------

    def describe(self, job_ids: list[str]) -> dict[str, dict]:
        """``describe_jobs`` on any number of ids, 100 a call."""
        return self.aws.describe(job_ids)

    def failures(self, manifest: Manifest, run: SubmittedRun, described: dict[str, dict],
                 known: set[str] | None = None) -> list[Failure]:
        """Failed FOVs of ``run`` not in ``known`` (``BatchFailures.failures``)."""
        return self.reader.failures(manifest, run, described, known)

    def slice_failures(self, manifest: Manifest, seen: set[str]) -> list[Failure]:
        """FOVs packed children recorded failed and went on from (``BatchFailures.slice_failures``)."""
        return self.reader.slice_failures(manifest, seen)

    def compute_environment(self) -> dict:
        """The queue's first compute environment (``BatchAccounting.compute_environment``)."""
        return self.accounting.compute_environment()

    def job_size(self, arn: str) -> dict:
        """What a job definition asks for (``BatchAccounting.job_size``)."""
        return self.accounting.job_size(arn)

    def fov_seconds(self, manifest: Manifest, run: SubmittedRun) -> dict[str, float]:
        """Each FOV's last attempt in seconds (``BatchAccounting.fov_seconds``)."""
        return self.accounting.fov_seconds(manifest, run)

    def bill(self, runs: list[SubmittedRun], prices) -> Bill:
        """What the runs' attempts used and cost (``BatchAccounting.bill``)."""
        return self.accounting.bill(runs, prices)

    # -- following, status and cancel ----------------------------------------------------------

    def follow(self, manifest: Manifest, submission: SubmittedRun,
               observer: Observer | None = None, max_failures: int | None = None, *,
               max_cost: float | None = None, prices=None) -> FollowOutcome:
        """Follow the jobs until the merge ends or a FOV fails and every FOV has ended; Ctrl-C
        returns an ``interrupted`` outcome and leaves the jobs running. When the first
        ``max_failures`` FOVs to end all failed with one error (their log's error line), the
        rest of the run and its merge are cancelled: ``stopped_early``. Likewise when the
        estimated cost of its attempts so far (priced with ``prices``) passes ``max_cost``
        (checked at most every ``follow.COST_CHECK_S`` seconds): ``over_budget``."""
        return BatchFollow(self, manifest, submission, observer or SilentObserver(),
                           max_failures, max_cost, prices).until_end()

    def status(self, manifest: Manifest, submissions: list[SubmittedRun]) -> tuple[dict, list[Failure]]:
        """The jobs of every submission and the failures of the latest: (JSON-ready state, failures)."""
        described = self.describe([i for r in submissions for i in r.job_ids])
        latest = submissions[-1]
        latest_manifest = (manifest if latest.manifest_url.endswith(f"/{MANIFEST_NAME}")
                           else Manifest.load(latest.manifest_url))
        failures = self.failures(latest_manifest, latest, described)
        failures += self.slice_failures(latest_manifest, {f.fov for f in failures})
        self.reader.with_tails(failures)
        state = {
            "latest_submission": latest.jobs_url,
            "latest_counts": watch.counts(latest, described),
            "failed_fovs": [f.fov for f in failures],
            "jobs": watch.job_entries(submissions, described),
        }
        return state, failures

    def cancel(self, run_id: str, runs: list[SubmittedRun],
               reason: str | None = None) -> tuple[list[str], list[str]]:
        """Terminate the started jobs of a run and cancel its queued ones (merge first);
        returns (terminated, cancelled) job ids."""
        reason = reason or f"cancelled with `{LAUNCHER} cancel {run_id}`"
        ids = [i for run in runs for i in [run.merge_job_id, *(j.job_id for j in run.process_jobs)] if i]
        return self.aws.cancel(ids, reason)
