"""Which FOVs of a Batch run failed, and why: failed children by FOV, the FOVs a packed child
recorded failed and went on from, and the tails of their CloudWatch logs."""

from __future__ import annotations

import dataclasses

from starfish_batch.core import fov_output, printable, storage
from starfish_batch.core.contract import LOG_TAIL_LINES, MAX_LOG_TAILS
from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.core.fov_failure import recorded_failures
from starfish_batch.core.manifest import Manifest
from starfish_batch.launcher.executors.batch import watch
from starfish_batch.launcher.executors.batch.checks import client_error
from starfish_batch.launcher.executors.batch.clients import BatchClients
from starfish_batch.launcher.executors.batch.jobs import SubmittedRun
from starfish_batch.launcher.outcome import Failure


class BatchFailures:
    """Reads a run's failures from ``describe_jobs``, ``failures/`` and CloudWatch Logs."""

    def __init__(self, aws: BatchClients) -> None:
        self.aws = aws

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
            new = [i for i in self.aws.failed_children(job.job_id) if i not in known]
            for child in self.aws.describe(new).values():
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

    @staticmethod
    def slice_failures(manifest: Manifest, seen: set[str]) -> list[Failure]:
        """FOVs of packed children recorded failed in ``failures/`` (children that went on, and
        may have succeeded) and not in ``seen``; a FOV whose output is whole since is left out."""
        if manifest.fovs_per_job == 1:
            return []
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
        group = self.aws.outputs.log_group_name or "/aws/batch/job"
        if not stream:
            return ["(no log stream: the container did not start; see the reason above)"]
        try:
            events = self.aws.logs.get_log_events(logGroupName=group, logStreamName=stream,
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
        group = self.aws.outputs.log_group_name
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
