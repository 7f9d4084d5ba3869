"""The AWS calls of a Batch run: check, submit, follow, describe and cancel; never prints.

What it finds is returned as objects (``SubmittedRun``, ``FollowOutcome``, ``Failure``) or
handed to an ``Observer`` (``executors.base``) while following, so the CLI and the console decide what a
scientist reads and which exit code a run ends with.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable

from starfish_batch.core import printable, storage
from starfish_batch.core.contract import LAUNCHER, LOG_TAIL_LINES, MAX_LOG_TAILS, MERGED_NAME
from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.core.manifest import Manifest
from starfish_batch.launcher.early_stop import BrokenRecipeWatch, error_line, signature
from starfish_batch.launcher.executors.base import Observer, SilentObserver
from starfish_batch.launcher.executors.batch import checks, usage, watch
from starfish_batch.launcher.executors.batch.checks import client_error
from starfish_batch.launcher.executors.batch.jobs import (
    ProcessJob,
    SubmittedRun,
    chunks,
    jobs_url_for,
    submission_label,
)
from starfish_batch.launcher.executors.batch.requests import JobTarget, merge_request, process_requests
from starfish_batch.launcher.outcome import Failure, FollowOutcome
from starfish_batch.launcher.pricing import Bill, bill_of
from starfish_batch.launcher.tf_outputs import TfOutputs

DESCRIBE_BATCH = 100  # describe_jobs takes at most 100 ids
POLL_INITIAL_S = 2.0
POLL_MAX_S = 30.0
POLL_FACTOR = 1.5
COST_CHECK_S = 60.0  # --max-cost: describing every child's attempts is one call per 100 FOVs


def _batched(items: list[str], n: int = DESCRIBE_BATCH) -> Iterable[list[str]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


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
        self._session = session
        self._clients: dict[str, object] = {}
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
        if service not in self._clients:
            import boto3

            session = self._session or boto3.session.Session()
            self._clients[service] = storage.watch_retries(
                session.client(service, region_name=self.outputs.region, config=storage.botocore_config()),
                service)
        return self._clients[service]

    @property
    def batch(self):
        return self.client("batch")

    @property
    def logs(self):
        return self.client("logs")

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
        for page in self.batch.get_paginator("list_jobs").paginate(arrayJobId=parent_id, jobStatus="FAILED"):
            ids.extend(j["jobId"] for j in page.get("jobSummaryList", []))
        return ids

    def failures(self, manifest: Manifest, run: SubmittedRun, described: dict[str, dict],
                 known: set[str] | None = None) -> list[Failure]:
        """Failed process-fov children (or plain jobs) of ``run`` not in ``known``, by FOV (a
        packed child: each FOV of its slice left without a whole output)."""
        known = known if known is not None else set()
        found: list[Failure] = []
        for job in run.process_jobs:
            info = described.get(job.job_id, {})
            if not job.is_array:
                if info.get("status") == "FAILED" and job.job_id not in known:
                    found.extend(self._by_fov(manifest, watch.failure_of(info, None, None), job.offset))
                continue
            if not watch.status_summary(info).get("FAILED"):
                continue
            new = [i for i in self.failed_children(job.job_id) if i not in known]
            for child in self.describe(new).values():
                found.extend(self._by_fov(manifest, watch.failure_of(child, None, None),
                                          job.offset + watch.child_index(child)))
        found.sort(key=lambda f: (f.index is None, f.index))
        return found

    @staticmethod
    def _by_fov(manifest: Manifest, failure: Failure, job_index: int) -> list[Failure]:
        """A failed child's failure, once per FOV it left undone (its slice's recorded reasons first)."""
        if manifest.fovs_per_job == 1:
            fov = manifest.fovs[job_index] if job_index < len(manifest.fovs) else f"#{job_index}"
            return [dataclasses.replace(failure, fov=fov, index=manifest.run_index(fov))]
        from starfish_batch.core import fov_output
        from starfish_batch.core.fov_failure import recorded_failures

        try:
            indexes = manifest.job_fovs(job_index)
        except StarfishBatchError:
            return [dataclasses.replace(failure, fov=f"job #{job_index}", index=None)]
        left = [i for i in indexes if fov_output.done_record(manifest, manifest.fovs[i]) is None]
        recorded = recorded_failures(manifest, [manifest.fovs[i] for i in left])
        found = []
        for i in left:
            fov = manifest.fovs[i]
            own = recorded.get(fov)
            found.append(dataclasses.replace(
                failure, fov=fov, index=manifest.run_index(fov), reason=own.reason if own else failure.reason,
                out_of_memory=failure.out_of_memory or bool(own and own.out_of_memory)))
        return found

    def slice_failures(self, manifest: Manifest, seen: set[str]) -> list[Failure]:
        """FOVs of packed children recorded failed in ``failures/`` (children that went on, and
        may have succeeded) and not in ``seen``; a FOV whose output is whole since is left out."""
        if manifest.fovs_per_job == 1:
            return []
        from starfish_batch.core import fov_output
        from starfish_batch.core.fov_failure import recorded_failures

        found = []
        for fov, own in recorded_failures(manifest).items():
            if fov in seen or fov_output.done_record(manifest, fov) is not None:
                continue
            found.append(Failure(fov=fov, index=own.index, reason=own.reason, exit_code=None,
                                 job_id=own.job_id or None, out_of_memory=own.out_of_memory,
                                 tail=[f"(recorded in {storage.join(manifest.run_root, 'failures')}; the "
                                       f"child went on with its other FOVs: its log has the traceback)"]))
        found.sort(key=lambda f: f.index)
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
            return [f"(cannot read log {group} {stream}: {client_error(exc)})"]
        out: list[str] = []
        for event in events:
            out.extend(str(event.get("message", "")).rstrip("\n").splitlines() or [""])
        return printable.bounded_tail(out[-lines:]) or [f"(log stream {group} {stream} is empty)"]

    def with_tails(self, failures: list[Failure], budget: int = MAX_LOG_TAILS) -> int:
        """Read the log tails of the first ``budget`` failures; returns how many were read.

        Each failure's ``log`` becomes "<log group> <stream>", the place to read all of it.
        """
        group = self.outputs.log_group_name
        read = 0
        for failure in failures:
            stream = failure.log
            if failure.tail is not None:  # told already (a slice's recorded failure)
                continue
            if read < budget:
                failure.tail = self.log_tail(stream)
                read += 1
            failure.log = f"{group} {stream}" if stream else None
        return read

    # -- following ------------------------------------------------------------------------

    def follow(self, manifest: Manifest, submission: SubmittedRun,
               observer: Observer | None = None, max_failures: int | None = None, *,
               max_cost: float | None = None, prices=None) -> FollowOutcome:
        """Follow the jobs until the merge ends or a FOV fails and every FOV has ended; Ctrl-C
        returns an ``interrupted`` outcome and leaves the jobs running. When the first
        ``max_failures`` FOVs to end all failed with one error (their log's error line), the
        rest of the run and its merge are cancelled: ``stopped_early``. Likewise when the
        estimated cost of its attempts so far (priced with ``prices``) passes ``max_cost``
        (checked at most every ``COST_CHECK_S`` seconds): ``over_budget``."""
        observer = observer or SilentObserver()
        total = manifest.n_jobs  # children: a packed child runs several FOVs
        known: set[str] = set()
        slice_failed = 0
        failures: list[Failure] = []
        tails = max(MAX_LOG_TAILS, max_failures or 0)
        broken = BrokenRecipeWatch(max_failures)
        cost_checked = None
        delay = self.poll_initial
        stuck = watch.StuckWatch(self.stuck_after)
        try:
            while True:
                described = self.describe(submission.job_ids)
                counts = watch.counts(submission, described)
                observer.progress(counts, total)
                warning = stuck.update(counts, self.clock())
                if warning:
                    observer.warn(warning)
                new = []
                if counts["FAILED"] > len(known):
                    new = self.failures(manifest, submission, described, known)
                    known.update(f.job_id for f in new)
                    told = {f.fov for f in failures}  # a slice may have recorded the FOV already
                    new = [f for f in new if f.fov not in told]
                if manifest.fovs_per_job > 1:  # FOVs a packed child recorded failed and went on
                    recorded = self.slice_failures(manifest, {f.fov for f in failures + new})
                    slice_failed += len(recorded)
                    new += recorded
                if new:
                    tails -= self.with_tails(new, tails)
                    failures.extend(new)
                    observer.failed(new)
                    for failure in new:
                        broken.add(failure.fov, False,
                                   signature(error_line(failure.tail) or failure.reason, failure.fov))
                broken.succeeded = counts["SUCCEEDED"]
                if manifest.fovs_per_job > 1:  # FOVs of succeeded children, less those they recorded failed
                    broken.succeeded = max(0, counts["SUCCEEDED"] * manifest.fovs_per_job - slice_failed)
                if broken.error and counts["SUCCEEDED"] + counts["FAILED"] < total:
                    terminated, cancelled = self.cancel(
                        submission.run_id, [submission], reason=f"starfish-batch: the first {len(broken.fovs)} FOVs "
                                                  f"all failed with: {broken.error}"[:1000])
                    return FollowOutcome("stopped_early", failures, stopped_early=broken.error,
                                         cancelled=terminated + cancelled)
                if max_cost is not None and (cost_checked is None
                                             or time.monotonic() - cost_checked >= COST_CHECK_S):
                    cost_checked = time.monotonic()
                    spent = self.bill([submission], prices).cost_usd or 0.0
                    if spent > max_cost:
                        terminated, cancelled = self.cancel(
                            submission.run_id, [submission], reason=f"starfish-batch: estimated cost ${spent:.2f} "
                                                      f"passed --max-cost ${max_cost:.2f}")
                        return FollowOutcome("over_budget", failures, cost_usd=spent,
                                             cancelled=terminated + cancelled)
                merge = described.get(submission.merge_job_id, {})
                if merge.get("status") == "SUCCEEDED":
                    merged = storage.exists(storage.join(manifest.run_root, MERGED_NAME))
                    return FollowOutcome("merged" if merged else "merged_file_missing", failures)
                if merge.get("status") == "FAILED":
                    if failures:
                        return FollowOutcome("fovs_failed", failures)
                    merge_failure = watch.failure_of(merge, None, None)
                    self.with_tails([merge_failure])
                    return FollowOutcome("merge_failed", failures, merge_failure)
                if failures and counts["SUCCEEDED"] + counts["FAILED"] >= total:
                    if (submission.fovs_per_job > 1 and submission.merge_job_id
                            and merge.get("status") not in watch.TERMINAL):
                        # a packed child that recorded a FOV failed and went on succeeds: the merge would start
                        self.cancel(submission.run_id, [dataclasses.replace(submission, process_jobs=[])],
                                    reason="starfish-batch: FOVs failed; nothing to merge")
                    return FollowOutcome("fovs_failed", failures)
                if not submission.merge_job_id and counts["SUCCEEDED"] >= total:
                    return FollowOutcome("processed", failures)
                self.sleep(delay)
                delay = min(delay * POLL_FACTOR, self.poll_max)
        except KeyboardInterrupt:
            return FollowOutcome("interrupted", failures)
        finally:
            observer.close()

    # -- what a run used ------------------------------------------------------------------

    def compute_environment(self) -> dict:
        """The queue's first compute environment: type, instance types and maximum vCPUs."""
        arn = self.outputs.extra.get("compute_environment_arn")
        try:
            if not arn:
                queue = checks.check_queue(self.batch, self.outputs, self.job_queue)
                order = sorted(queue.get("computeEnvironmentOrder") or [], key=lambda c: c.get("order", 0))
                arn = order[0]["computeEnvironment"] if order else None
            found = self.batch.describe_compute_environments(
                computeEnvironments=[arn]).get("computeEnvironments", []) if arn else []
        except StarfishBatchError:
            raise
        except Exception as exc:
            raise StarfishBatchError(f"cannot describe the compute environment of {self.job_queue}: "
                                     f"{client_error(exc)}") from exc
        if not found:
            raise StarfishBatchError(f"the compute environment of job queue {self.job_queue} "
                                     f"({arn or 'none in its order'}) does not exist")
        resources = found[0].get("computeResources") or {}
        return {"arn": found[0].get("computeEnvironmentArn", arn),
                "type": resources.get("type") or self.outputs.extra.get("compute_type") or "EC2",
                "instance_types": list(resources.get("instanceTypes") or ["optimal"]),
                "max_vcpus": int(resources.get("maxvCpus") or 0)}

    def job_size(self, arn: str) -> dict:
        """What a job definition asks for: vCPUs, memory (MiB) and, on Fargate, disk (GiB)."""
        try:
            found = self.batch.describe_job_definitions(jobDefinitions=[arn]).get("jobDefinitions", [])
        except Exception as exc:
            raise StarfishBatchError(f"cannot describe job definition {arn}: {client_error(exc)}") from exc
        container = (found[0].get("containerProperties") or {}) if found else {}
        vcpus, memory = usage.resources({"container": container})
        disk = (container.get("ephemeralStorage") or {}).get("sizeInGiB")
        timeout = ((found[0].get("timeout") or {}).get("attemptDurationSeconds") if found else None)
        return {"vcpus": vcpus, "memory_mib": memory, "disk_gib": disk, "timeout_seconds": timeout,
                "image": container.get("image")}

    def attempts(self, runs: list[SubmittedRun]) -> list[dict]:
        """``describe_jobs`` of every job that can have run: array children (``<parent>:<i>``,
        AWS's documented child ids), plain process-fov jobs and the merges."""
        ids: list[str] = []
        for run in runs:
            for job in run.process_jobs:
                if job.is_array:
                    ids.extend(f"{job.job_id}:{i}" for i in range(job.size))
                else:
                    ids.append(job.job_id)
            if run.merge_job_id:
                ids.append(run.merge_job_id)
        return list(self.describe(ids).values())

    def fov_seconds(self, manifest: Manifest, run: SubmittedRun) -> dict[str, float]:
        """Each FOV's last attempt, in seconds from its container's start to its stop."""
        found: dict[str, float] = {}
        now_ms = int(time.time() * 1000)
        for job in self.attempts([run]):
            if job["jobId"] == run.merge_job_id:
                continue
            offset = next(p.offset for p in run.process_jobs if job["jobId"].split(":")[0] == p.job_id)
            index = offset + (watch.child_index(job) if ":" in job["jobId"] else 0)
            attempts = usage.usages(job, now_ms)
            if attempts and index < manifest.n_jobs:
                fovs = manifest.job_fovs(index)  # a packed child's seconds, shared by its FOVs
                for i in fovs:
                    found[manifest.fovs[i]] = attempts[-1].seconds / len(fovs)
        return found

    def bill(self, runs: list[SubmittedRun], prices) -> Bill:
        """vCPU-hours, GB-hours, attempts and an estimated cost from each attempt's start and
        stop times and its job's resources, priced with ``prices`` (a ``PriceTable``)."""
        env = self.compute_environment()
        now_ms = int(time.time() * 1000)
        found = [u for job in self.attempts(runs) for u in usage.usages(job, now_ms)]
        return bill_of(
            found,
            lambda u: prices.hourly(env["type"], self.outputs.region, u.vcpus, u.memory_mib,
                                    env["instance_types"]),
            prices=prices.describe(),
            note=f"an estimate: {env['type']} in {self.outputs.region}, each attempt's share of "
                 f"its compute at list price; idle instances, storage and transfer are not included",
        )

    # -- status and cancel ----------------------------------------------------------------

    def status(self, manifest: Manifest, submissions: list[SubmittedRun]) -> tuple[dict, list[Failure]]:
        """The jobs of every submission and the failures of the latest: (JSON-ready state, failures)."""
        from starfish_batch.core.contract import MANIFEST_NAME, MERGE, PROCESS_FOV

        described = self.describe([i for r in submissions for i in r.job_ids])
        jobs = []
        for run in submissions:
            name = run.jobs_url.rsplit("/", 1)[-1]
            for job in run.process_jobs:
                info = described.get(job.job_id, {})
                entry = {"file": name, "job": PROCESS_FOV, "jobId": job.job_id, "size": job.size,
                         "offset": job.offset, "status": info.get("status", "UNKNOWN")}
                if job.is_array:
                    entry["statusSummary"] = watch.status_summary(info)
                jobs.append(entry)
            if not run.merge_job_id:
                continue
            info = described.get(run.merge_job_id, {})
            jobs.append({"file": name, "job": MERGE, "jobId": run.merge_job_id,
                         "status": info.get("status", "UNKNOWN"),
                         **({"statusReason": info["statusReason"]} if info.get("statusReason") else {})})
        latest = submissions[-1]
        latest_manifest = (manifest if latest.manifest_url.endswith(f"/{MANIFEST_NAME}")
                           else Manifest.load(latest.manifest_url))
        failures = self.failures(latest_manifest, latest, described)
        failures += self.slice_failures(latest_manifest, {f.fov for f in failures})
        self.with_tails(failures)
        state = {
            "latest_submission": latest.jobs_url,
            "latest_counts": watch.counts(latest, described),
            "failed_fovs": [f.fov for f in failures],
            "jobs": jobs,
        }
        return state, failures

    def cancel(self, run_id: str, runs: list[SubmittedRun],
               reason: str | None = None) -> tuple[list[str], list[str]]:
        """Terminate the started jobs of a run and cancel its queued ones (merge first);
        returns (terminated, cancelled) job ids."""
        reason = reason or f"cancelled with `{LAUNCHER} cancel {run_id}`"
        ids = [i for run in runs for i in [run.merge_job_id, *(j.job_id for j in run.process_jobs)] if i]
        described = self.describe(ids)
        terminated, cancelled = [], []
        for job_id in ids:
            info = described.get(job_id)
            if info is None or info.get("status") in watch.TERMINAL:
                continue
            try:
                if watch.is_running(info):
                    # TerminateJob also cancels what has not started (children of an array too).
                    self.batch.terminate_job(jobId=job_id, reason=reason)
                    terminated.append(job_id)
                else:
                    self.batch.cancel_job(jobId=job_id, reason=reason)
                    cancelled.append(job_id)
            except Exception as exc:
                raise StarfishBatchError(f"cannot cancel job {job_id}: {client_error(exc)}") from exc
        return terminated, cancelled
