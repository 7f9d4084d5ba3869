"""Following a Batch submission to its end: one ``describe_jobs`` pass a poll, the failures it
finds told as they come, and the early stops (a broken recipe, --max-cost) that cancel the rest."""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

from starfish_batch.core import storage
from starfish_batch.core.contract import MAX_LOG_TAILS, MERGED_NAME
from starfish_batch.core.manifest import Manifest
from starfish_batch.launcher.early_stop import BrokenRecipeWatch, error_line, signature
from starfish_batch.launcher.executors.base import Observer
from starfish_batch.launcher.executors.batch import watch
from starfish_batch.launcher.executors.batch.jobs import SubmittedRun
from starfish_batch.launcher.outcome import Failure, FollowOutcome

if TYPE_CHECKING:
    from starfish_batch.launcher.executors.batch.executor import BatchExecutor

POLL_FACTOR = 1.5
COST_CHECK_S = 60.0  # --max-cost: describing every child's attempts is one call per 100 FOVs


class BatchFollow:
    """One following of one submission: what it has seen so far, and the steps of each poll."""

    def __init__(self, executor: BatchExecutor, manifest: Manifest, run: SubmittedRun, observer: Observer,
                 max_failures: int | None, max_cost: float | None, prices) -> None:
        self.executor = executor
        self.manifest = manifest
        self.run = run
        self.observer = observer
        self.max_cost = max_cost
        self.prices = prices
        self.total = manifest.n_jobs  # children: a packed child runs several FOVs
        self.known: set[str] = set()  # failed job ids already read
        self.slice_failed = 0  # FOVs packed children recorded failed and went on from
        self.failures: list[Failure] = []
        self.tails = max(MAX_LOG_TAILS, max_failures or 0)  # log tails left to read
        self.broken = BrokenRecipeWatch(max_failures)
        self.cost_checked: float | None = None
        self.stuck = watch.StuckWatch(executor.stuck_after)

    def until_end(self) -> FollowOutcome:
        """Poll, backing off, until an outcome; Ctrl-C returns ``interrupted`` (the jobs go on)."""
        delay = self.executor.poll_initial
        try:
            while True:
                outcome = self.poll()
                if outcome is not None:
                    return outcome
                self.executor.sleep(delay)
                delay = min(delay * POLL_FACTOR, self.executor.poll_max)
        except KeyboardInterrupt:
            return FollowOutcome("interrupted", self.failures)
        finally:
            self.observer.close()

    def poll(self) -> FollowOutcome | None:
        """One look at the jobs: progress and new failures told; the outcome if the run ended."""
        described = self.executor.describe(self.run.job_ids)
        counts = watch.counts(self.run, described)
        self.observer.progress(counts, self.total)
        warning = self.stuck.update(counts, self.executor.clock())
        if warning:
            self.observer.warn(warning)
        self._tell(self._new_failures(described, counts))
        self.broken.succeeded = counts["SUCCEEDED"]
        if self.manifest.fovs_per_job > 1:  # FOVs of succeeded children, less those they recorded failed
            self.broken.succeeded = max(0, counts["SUCCEEDED"] * self.manifest.fovs_per_job - self.slice_failed)
        return self._stopped(counts) or self._ended(described, counts)

    def _new_failures(self, described: dict[str, dict], counts: dict[str, int]) -> list[Failure]:
        """FOVs failed since the last poll: failed children, and FOVs a packed child recorded."""
        new: list[Failure] = []
        if counts["FAILED"] > len(self.known):
            new = self.executor.failures(self.manifest, self.run, described, self.known)
            self.known.update(f.job_id for f in new)
            told = {f.fov for f in self.failures}  # a slice may have recorded the FOV already
            new = [f for f in new if f.fov not in told]
        if self.manifest.fovs_per_job > 1:  # FOVs a packed child recorded failed and went on
            recorded = self.executor.slice_failures(self.manifest, {f.fov for f in self.failures + new})
            self.slice_failed += len(recorded)
            new += recorded
        return new

    def _tell(self, new: list[Failure]) -> None:
        if not new:
            return
        self.tails -= self.executor.reader.with_tails(new, self.tails)
        self.failures.extend(new)
        self.observer.failed(new)
        for failure in new:
            self.broken.add(failure.fov, False, signature(error_line(failure.tail) or failure.reason, failure.fov))

    def _stopped(self, counts: dict[str, int]) -> FollowOutcome | None:
        """The first FOVs all failed alike, or the cost passed --max-cost: the rest is cancelled."""
        run = self.run
        if self.broken.error and counts["SUCCEEDED"] + counts["FAILED"] < self.total:
            terminated, cancelled = self.executor.cancel(
                run.run_id, [run], reason=f"starfish-batch: the first {len(self.broken.fovs)} FOVs "
                                          f"all failed with: {self.broken.error}"[:1000])
            return FollowOutcome("stopped_early", self.failures, stopped_early=self.broken.error,
                                 cancelled=terminated + cancelled)
        if self.max_cost is None or (self.cost_checked is not None
                                     and time.monotonic() - self.cost_checked < COST_CHECK_S):
            return None
        self.cost_checked = time.monotonic()
        spent = self.executor.bill([run], self.prices).cost_usd or 0.0
        if spent <= self.max_cost:
            return None
        terminated, cancelled = self.executor.cancel(
            run.run_id, [run], reason=f"starfish-batch: estimated cost ${spent:.2f} "
                                      f"passed --max-cost ${self.max_cost:.2f}")
        return FollowOutcome("over_budget", self.failures, cost_usd=spent, cancelled=terminated + cancelled)

    def _ended(self, described: dict[str, dict], counts: dict[str, int]) -> FollowOutcome | None:
        """The merge ended, or every FOV ended and some failed, or (no merge) all succeeded."""
        run, failures = self.run, self.failures
        merge = described.get(run.merge_job_id, {})
        if merge.get("status") == "SUCCEEDED":
            merged = storage.exists(storage.join(self.manifest.run_root, MERGED_NAME))
            return FollowOutcome("merged" if merged else "merged_file_missing", failures)
        if merge.get("status") == "FAILED":
            if failures:
                return FollowOutcome("fovs_failed", failures)
            merge_failure = watch.failure_of(merge, None, None)
            self.executor.reader.with_tails([merge_failure])
            return FollowOutcome("merge_failed", failures, merge_failure)
        if failures and counts["SUCCEEDED"] + counts["FAILED"] >= self.total:
            if run.fovs_per_job > 1 and run.merge_job_id and merge.get("status") not in watch.TERMINAL:
                # a packed child that recorded a FOV failed and went on succeeds: the merge would start
                self.executor.cancel(run.run_id, [dataclasses.replace(run, process_jobs=[])],
                                     reason="starfish-batch: FOVs failed; nothing to merge")
            return FollowOutcome("fovs_failed", failures)
        if not run.merge_job_id and counts["SUCCEEDED"] >= self.total:
            return FollowOutcome("processed", failures)
        return None
