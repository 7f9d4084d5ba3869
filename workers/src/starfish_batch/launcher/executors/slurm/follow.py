"""Following a Slurm submission to its end: one ``squeue`` (or ``sacct``) call a poll, the
failures told as they come, the early stops (a broken recipe, --max-cost in core-hours) that
cancel the rest, and Ctrl-C, which cancels this submission's jobs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starfish_batch.core import storage
from starfish_batch.core.contract import MAX_LOG_TAILS, MERGED_NAME
from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.core.manifest import Manifest
from starfish_batch.launcher.early_stop import BrokenRecipeWatch, error_line, signature
from starfish_batch.launcher.executors.base import Observer
from starfish_batch.launcher.executors.slurm import failures, states
from starfish_batch.launcher.executors.slurm.failures import SlurmFailure
from starfish_batch.launcher.executors.slurm.jobs import SlurmSubmission
from starfish_batch.launcher.outcome import FollowOutcome

if TYPE_CHECKING:
    from starfish_batch.launcher.executors.slurm.executor import SlurmExecutor

POLL_FACTOR = 1.5
POLL_ERRORS = 10  # consecutive failed polls (a restarting slurmctld) before giving up following
COUNTED = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")


def core_hours(found: list[states.JobState]) -> float:
    """CPUs times elapsed time, summed over tasks (what a cluster's fair share charges)."""
    return sum(s.cpus * s.seconds for s in found) / 3600


class SlurmFollow:
    """One following of one submission: the tasks ended so far, and the steps of each poll."""

    def __init__(self, executor: SlurmExecutor, manifest: Manifest, sub: SlurmSubmission, observer: Observer,
                 max_failures: int | None, max_core_hours: float | None) -> None:
        self.executor = executor
        self.manifest = manifest
        self.sub = sub
        self.observer = observer
        self.max_core_hours = max_core_hours
        self.total = len(manifest.fovs)
        self.ended: dict[int, states.JobState] = {}
        self.running: list[states.JobState] = []
        self.failures: list[SlurmFailure] = []
        self.broken = BrokenRecipeWatch(max_failures)
        self.tails = max(MAX_LOG_TAILS, max_failures or 0)  # log tails left to show
        self.errors = 0  # consecutive failed polls

    def until_end(self) -> FollowOutcome:
        """Poll, backing off, until an outcome; Ctrl-C cancels this submission's jobs."""
        delay = self.executor.poll_initial
        try:
            while True:
                seen = self._poll(delay)
                if seen is None:
                    continue
                outcome = self.step(seen)
                if outcome is not None:
                    return outcome
                self.executor.sleep(delay)
                delay = min(delay * POLL_FACTOR, self.executor.poll_max)
        except KeyboardInterrupt:
            return FollowOutcome("interrupted", self.failures, cancelled=self.executor.cancel_jobs(self.sub.job_ids))
        finally:
            self.observer.close()

    def _poll(self, delay: float) -> dict[str, states.JobState] | None:
        """Slurm's states, or None after a failed poll (warned, slept); raises after POLL_ERRORS."""
        try:
            seen = self.executor.poll(self.sub.job_ids)
        except StarfishBatchError as exc:
            self.errors += 1
            if self.errors >= POLL_ERRORS:
                raise
            self.observer.warn(f"warning: {exc}; trying again")
            self.executor.sleep(delay)
            return None
        self.errors = 0
        return seen

    def step(self, seen: dict[str, states.JobState]) -> FollowOutcome | None:
        """One poll's states: progress and new failures told; the outcome if the run ended."""
        new = self._update(seen)
        self.observer.progress(self._counts(), self.total)
        for i, s in new:
            if not s.failed:
                self.broken.add(self.manifest.fovs[i], True)
        self._tell([(i, s) for i, s in new if s.failed])
        return self._stopped() or self._ended(seen)

    def _update(self, seen: dict[str, states.JobState]) -> list[tuple[int, states.JobState]]:
        """Each FOV not ended before: ended now (returned) or still running."""
        self.running = []
        new: list[tuple[int, states.JobState]] = []
        for index in range(self.total):
            if index in self.ended:
                continue
            job_id, task = self.sub.locate(index)
            state = seen.get(f"{job_id}_{task}") or failures.gone(
                self.manifest, index, job_id, task, self.executor.accounting)
            if state.ended:
                self.ended[index] = state
                new.append((index, state))
            else:
                self.running.append(state)
        return new

    def _counts(self) -> dict[str, int]:
        counts = dict.fromkeys(COUNTED, 0)
        for state in self.running:
            counts["RUNNING" if state.state in states.ACTIVE else "PENDING"] += 1
        for state in self.ended.values():
            counts["FAILED" if state.failed else "SUCCEEDED"] += 1
        return counts

    def _tell(self, failed_now: list[tuple[int, states.JobState]]) -> None:
        if not failed_now:
            return
        if not self.executor.accounting:
            codes = failures.exit_codes(self.executor.commands, [s.name for _, s in failed_now])
            for _, s in failed_now:
                s.exit_code = codes.get(s.name, s.exit_code)
        found = []
        for i, s in failed_now:
            found.append(failures.failure_of(self.sub, self.manifest, i, s, read_tail=self.tails > 0))
            self.tails -= 1
        self.failures.extend(found)
        self.observer.failed(found)
        for f in found:
            self.broken.add(f.fov, False, signature(error_line(f.tail) or f.reason, f.fov))

    def _stopped(self) -> FollowOutcome | None:
        """The first FOVs all failed alike, or the core-hours passed the limit: the rest is cancelled."""
        if self.broken.error and len(self.ended) < self.total:
            cancelled = self.executor.cancel_jobs(self.sub.job_ids)
            return FollowOutcome("stopped_early", self.failures, stopped_early=self.broken.error, cancelled=cancelled)
        if self.max_core_hours is not None:
            used = core_hours([*self.ended.values(), *self.running])
            if used > self.max_core_hours:
                cancelled = self.executor.cancel_jobs(self.sub.job_ids)
                return FollowOutcome("over_budget", self.failures, cost_usd=used, cancelled=cancelled)
        return None

    def _ended(self, seen: dict[str, states.JobState]) -> FollowOutcome | None:
        """Every FOV ended and some failed (the merge is cancelled), or the merge ended, or (no
        merge) every FOV ended."""
        sub, done = self.sub, len(self.ended) >= self.total
        merge_state = seen.get(sub.merge_job_id) if sub.merge_job_id else None
        if self.failures and done:
            if sub.merge_job_id and (merge_state is None or not merge_state.ended):
                self.executor.commands.scancel([sub.merge_job_id])  # it would refuse a run with FOVs missing
            return FollowOutcome("fovs_failed", self.failures)
        if sub.merge_job_id and done and (merge_state is None or merge_state.ended):
            return self._merge_ended(merge_state)
        if not sub.merge_job_id and done:
            return FollowOutcome("processed", self.failures)
        return None

    def _merge_ended(self, merge_state: states.JobState | None) -> FollowOutcome | None:
        """The merge ended (or squeue no longer lists it): merged, or why not."""
        if merge_state is None or merge_state.state == states.SUCCEEDED:
            if storage.exists(storage.join(self.manifest.run_root, MERGED_NAME)):
                return FollowOutcome("merged", self.failures)
            if merge_state is not None:
                return FollowOutcome("merged_file_missing", self.failures)
        if merge_state is None and not self.executor.accounting:  # squeue forgot it (MinJobAge): merged nothing
            merge_state = states.JobState(self.sub.merge_job_id, None, "FAILED", reason=failures.GONE)
        if merge_state is None:
            return None
        return FollowOutcome("merge_failed", self.failures, failures.merge_failure(
            self.executor.commands, self.executor.accounting, self.sub, merge_state))
