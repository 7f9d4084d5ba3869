"""The Slurm calls of a run: check, submit, follow, describe and cancel; never prints.

It returns the objects the Batch executor returns (``FollowOutcome``, ``Failure``) and tells a
``BatchObserver`` what it sees while following, so the CLI and the report print both alike.
One ``squeue`` (or, where the cluster keeps accounting, one ``sacct``) call per poll covers the
whole submission; details of failed tasks are read only when some fail.
"""

from __future__ import annotations

import collections
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from starfish_batch import fov_output, storage
from starfish_batch.contract import LOG_TAIL_LINES, LOGS_DIR, MAX_LOG_TAILS, MERGE, MERGED_NAME, PROCESS_FOV
from starfish_batch.errors import StarfishBatchError
from starfish_batch.launcher.batch.executor import BatchObserver, SilentObserver
from starfish_batch.launcher.batch.jobs import ProcessJob, jobs_url_for, submission_label
from starfish_batch.launcher.early_stop import BrokenRecipeWatch, error_line, signature
from starfish_batch.launcher.outcome import Failure, FollowOutcome
from starfish_batch.launcher.slurm import states
from starfish_batch.launcher.slurm.commands import ACCOUNTING_OFF, SlurmCommands
from starfish_batch.launcher.slurm.jobs import SlurmSubmission, array_parts, job_name, job_script
from starfish_batch.launcher.slurm.options import DEFAULT_MERGE_MEMORY_MIB, SlurmOptions, container_runtime
from starfish_batch.manifest import Manifest

POLL_INITIAL_S = 2.0
POLL_MAX_S = float(os.environ.get("STARFISH_BATCH_SLURM_POLL_MAX", "30"))
POLL_FACTOR = 1.5
POLL_ERRORS = 10  # consecutive failed polls (a restarting slurmctld) before giving up following
DEFAULT_MAX_ARRAY_SIZE = 1001  # Slurm's default MaxArraySize


@dataclass
class SlurmFailure(Failure):
    """A failed FOV with the Slurm state its task ended in."""

    state: str = ""

    @property
    def retryable(self) -> bool:
        """The node failed or the task was preempted: the FOV itself may be fine."""
        return self.state in states.RETRYABLE


def _tail(path: str, lines: int = LOG_TAIL_LINES) -> list[str]:
    try:
        with open(path, "rb") as f:
            found = [line.decode("utf-8", "replace").rstrip("\n") for line in collections.deque(f, maxlen=lines)]
    except OSError as exc:
        return [f"(no log at {path}: {exc.strerror or exc}; the job may not have started)"]
    return found or [f"(log {path} is empty)"]


class SlurmExecutor:
    """Submits, follows, describes and cancels the jobs of runs on a Slurm cluster."""

    def __init__(self, options: SlurmOptions | None = None, commands: SlurmCommands | None = None, *,
                 poll_initial: float = POLL_INITIAL_S, poll_max: float = POLL_MAX_S,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.options = options or SlurmOptions()
        self.commands = commands or SlurmCommands()
        self.poll_initial = poll_initial
        self.poll_max = poll_max
        self.sleep = sleep
        self._config: dict[str, str] | None = None

    # -- the cluster ------------------------------------------------------------------------

    @property
    def config(self) -> dict[str, str]:
        if self._config is None:
            self._config = self.commands.config()
        return self._config

    @property
    def max_array_size(self) -> int:
        """Array task ids run from 0 to MaxArraySize - 1."""
        try:
            return int(self.config.get("MaxArraySize", DEFAULT_MAX_ARRAY_SIZE))
        except ValueError:
            return DEFAULT_MAX_ARRAY_SIZE

    @property
    def accounting(self) -> bool:
        """Whether ``sacct`` can be asked (a slurmdbd keeps finished jobs); else ``squeue``."""
        return self.config.get("AccountingStorageType", ACCOUNTING_OFF) != ACCOUNTING_OFF

    def log_dir(self, manifest: Manifest) -> str:
        if self.options.log_dir:
            return os.path.abspath(self.options.log_dir)
        if storage.is_s3(manifest.run_root):
            raise StarfishBatchError(
                f"results go to {manifest.results_url}: give --slurm-log-dir, a folder on a filesystem "
                "every node of the cluster can write, for the jobs' output")
        return storage.join(manifest.run_root, LOGS_DIR, "slurm")

    def preflight(self, manifest: Manifest) -> list[str]:
        """Before anything is written: the cluster answers, the log folder and runtime are
        there; a resume also cancels jobs an earlier launcher of the run left in Slurm."""
        self.config  # noqa: B018 - scontrol answers, or the run stops here saying why
        warnings = []
        self.log_dir(manifest)
        if self.options.image:
            container_runtime()
            if not os.path.exists(self.options.image):
                raise StarfishBatchError(f"--apptainer-image {self.options.image} does not exist")
        if manifest.all_fovs is not None:  # a resume: its launcher holds the run's claim now
            try:
                earlier = self.submissions_of(manifest)
            except StarfishBatchError:
                earlier = []
            left = self.active([i for s in earlier for i in s.job_ids])
            if left:
                self.commands.scancel(left)
                warnings.append(f"run {manifest.run_id} still had {len(left)} job(s) in Slurm from an earlier "
                                f"launcher ({' '.join(left)}): cancelled; the FOVs they finished are kept")
        return warnings

    @staticmethod
    def submissions_of(manifest: Manifest) -> list[SlurmSubmission]:
        from starfish_batch.launcher.slurm.jobs import submissions

        return submissions(manifest.run_root, manifest.run_id)

    def worker(self, entry_point: str, manifest: Manifest, log_dir: str) -> list[str]:
        """The worker's entry point: beside this launcher's Python (the local executor's), or
        in the image through apptainer, with the run's folders bound."""
        from starfish_batch.launcher.local import worker_command

        if not self.options.image:
            return worker_command(entry_point)
        binds = {log_dir}
        for url in (manifest.results_url, manifest.experiment_url):
            if not storage.is_s3(url) and "://" not in url:
                binds.add(url if url == manifest.results_url else os.path.dirname(url))
        command = [container_runtime(), "exec"]
        for path in sorted(binds):
            command += ["--bind", path]
        return [*command, os.path.abspath(self.options.image), entry_point]

    # -- submission ---------------------------------------------------------------------------

    def submit(self, manifest: Manifest, manifest_url: str, observer: BatchObserver | None = None,
               merge: bool = True, resources: dict | None = None,
               escalated_from: dict[str, str] | None = None) -> SlurmSubmission:
        """One ``sbatch --array`` per MaxArraySize FOVs, then the merge after all of them
        (``afterany``: it runs even if a FOV failed, and refuses to merge a run with FOVs
        missing). Their ids are recorded beside the manifest; if a submission fails part way,
        the jobs already submitted are cancelled."""
        observer = observer or SilentObserver()
        resources = dict(resources or {})
        jobs_url = jobs_url_for(manifest_url)
        if storage.exists(jobs_url):
            raise StarfishBatchError(f"{jobs_url} already exists: this manifest was submitted before")
        label = submission_label(jobs_url)
        log_dir = self.log_dir(manifest)
        os.makedirs(log_dir, exist_ok=True)
        common = self.options.sbatch_options()  # the merge's: --time only if given
        per_fov = [o for o in common if not o.startswith("--time=")] + (
            [f"--time={resources['time']}"] if resources.get("time") else [])
        memory = int(resources["memory_mib"])
        cpus = int(resources.get("vcpus") or 1)
        limit = f"%{self.options.max_running}" if self.options.max_running else ""
        submitted: list[str] = []
        process_jobs: list[ProcessJob] = []
        try:
            command = self.worker(PROCESS_FOV, manifest, log_dir)
            for k, (offset, size) in enumerate(array_parts(len(manifest.fovs), self.max_array_size)):
                name = job_name(manifest.run_id, f"{label}{PROCESS_FOV}" + (f"-part{k + 1}" if offset else ""))
                job_id = self.commands.sbatch(
                    job_script(PROCESS_FOV, command, manifest, manifest_url, offset),
                    [f"--array=0-{size - 1}{limit}", f"--job-name={name}", f"--mem={memory}M",
                     f"--cpus-per-task={cpus}", f"--output={log_dir}/{PROCESS_FOV}-%A_%a.log",
                     "--requeue", *per_fov])
                submitted.append(job_id)
                process_jobs.append(ProcessJob(job_id, name, offset, size))
            merge_id = ""
            if merge:
                after = f"--dependency=afterany:{':'.join(submitted)}" if submitted else None
                merge_id = self.commands.sbatch(
                    job_script(MERGE, self.worker(MERGE, manifest, log_dir), manifest, manifest_url),
                    [f"--job-name={job_name(manifest.run_id, f'{label}merge')}",
                     f"--mem={max(DEFAULT_MERGE_MEMORY_MIB, memory)}M", "--cpus-per-task=1",
                     f"--output={log_dir}/{MERGE}-%j.log", *([after] if after else []), *common])
                submitted.append(merge_id)
            sub = SlurmSubmission(run_id=manifest.run_id, manifest_url=manifest_url, jobs_url=jobs_url,
                                  process_jobs=process_jobs, merge_job_id=merge_id, log_dir=log_dir,
                                  resources={"vcpus": cpus, "memory_mib": memory, "time": resources.get("time")},
                                  escalated_from=dict(escalated_from or {}))
            try:
                storage.write_text(jobs_url, sub.to_json())
            except StarfishBatchError as exc:
                observer.warn(f"warning: {exc}; the jobs are submitted: {' '.join(sub.job_ids)}")
        except BaseException:  # Ctrl-C before the ids are recorded too: no job is left unknown
            self.commands.scancel(submitted)
            raise
        return sub

    # -- describing ---------------------------------------------------------------------------

    def poll(self, job_ids: list[str]) -> dict[str, states.JobState]:
        """Every job and array task of ``job_ids`` in one call: ``sacct`` where the cluster
        keeps accounting, else ``squeue`` (which forgets a job MinJobAge after it ends)."""
        if not job_ids:
            return {}
        ids = ",".join(job_ids)
        if self.accounting:
            found = states.parse_sacct(self.commands.run(
                "sacct", "-X", "-n", "-P", "-j", ids, f"--format={states.SACCT_FORMAT}"))
        else:
            found = states.parse_squeue(self.commands.run(
                "squeue", "-h", "-r", "-t", "all", "-j", ids, "-o", states.SQUEUE_FORMAT))
        return {s.name: s for s in found}

    def active(self, job_ids: list[str], strict: bool = False) -> list[str]:
        """Those of ``job_ids`` with a task not ended yet (none if Slurm cannot say, unless ``strict``)."""
        try:
            found = self.poll(job_ids)
        except StarfishBatchError:
            if strict:
                raise
            return []
        return [j for j in job_ids if any(s.job_id == j and not s.ended for s in found.values())]

    def _gone(self, manifest: Manifest, index: int, job_id: str, task: int) -> states.JobState:
        """A task Slurm does not list. With accounting it is not recorded yet (slurmdbd lags
        the controller): pending. Without, squeue forgot it MinJobAge after it ended: done if
        its FOV's output is whole, else failed with no more said."""
        if self.accounting:
            return states.JobState(job_id, task, "PENDING", reason="not in the accounting records yet")
        fov = manifest.fovs[index]
        if fov_output.done_record(manifest, fov) is not None:
            return states.JobState(job_id, task, states.SUCCEEDED)
        return states.JobState(job_id, task, "FAILED", reason="ended without output; Slurm no longer lists it")

    def _exit_codes(self, names: list[str]) -> dict[str, int | None]:
        """Exit codes of ended tasks, from ``scontrol show job`` (one call per array)."""
        found: dict[str, int | None] = {}
        for array in dict.fromkeys(n.split("_", 1)[0] for n in names):
            try:
                shown = states.parse_show_job(self.commands.run("scontrol", "-o", "show", "job", array))
            except StarfishBatchError:
                continue
            found.update({n: states.exit_code_of(f) for n, f in shown.items()})
        return found

    def failure_of(self, sub: SlurmSubmission, manifest: Manifest, index: int, state: states.JobState,
                   read_tail: bool) -> SlurmFailure:
        path = sub.task_log(state.job_id, state.task)
        tail = _tail(path)  # read for its error line and out-of-memory notice, shown if read_tail
        line = error_line(tail)
        why = {"TIMEOUT": "ran past its time limit (--time)", "OUT_OF_MEMORY": "used more than its memory (--mem)",
               "NODE_FAIL": "its node failed", "PREEMPTED": "preempted by another job",
               "CANCELLED": "cancelled"}.get(state.state, state.reason)
        reason = f"Slurm {state.state}" + (f" ({why})" if why else "") + (f": {line}" if line else "")
        oom = state.state == states.OUT_OF_MEMORY or states.mentions_out_of_memory(tail) or "MemoryError" in reason
        return SlurmFailure(fov=manifest.fovs[index], index=index, reason=reason, exit_code=state.exit_code,
                            job_id=state.name, log=path, tail=tail if read_tail else None,
                            out_of_memory=oom, state=state.state)

    # -- following ----------------------------------------------------------------------------

    def follow(self, manifest: Manifest, sub: SlurmSubmission, observer: BatchObserver | None = None,
               max_failures: int | None = None, max_core_hours: float | None = None) -> FollowOutcome:
        """Follow the jobs until the merge ends, or every FOV ended and some failed (the merge
        is then cancelled). The first ``max_failures`` FOVs all failing with one error, or the
        run's core-hours passing ``max_core_hours``, cancel the rest. Ctrl-C (and SIGTERM)
        cancel this submission's jobs: ``interrupted``."""
        observer = observer or SilentObserver()
        total = len(manifest.fovs)
        ended: dict[int, states.JobState] = {}
        failures: list[SlurmFailure] = []
        broken = BrokenRecipeWatch(max_failures)
        tails = max(MAX_LOG_TAILS, max_failures or 0)
        delay, errors = self.poll_initial, 0
        merge_state: states.JobState | None = None
        try:
            while True:
                try:
                    seen = self.poll(sub.job_ids)
                    errors = 0
                except StarfishBatchError as exc:
                    errors += 1
                    if errors >= POLL_ERRORS:
                        raise
                    observer.warn(f"warning: {exc}; trying again")
                    self.sleep(delay)
                    continue
                counts = dict.fromkeys(("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING",
                                        "SUCCEEDED", "FAILED"), 0)
                running: list[states.JobState] = []
                new: list[tuple[int, states.JobState]] = []
                for index in range(total):
                    if index not in ended:
                        job_id, task = sub.locate(index)
                        state = seen.get(f"{job_id}_{task}") or self._gone(manifest, index, job_id, task)
                        if state.ended:
                            ended[index] = state
                            new.append((index, state))
                        else:
                            running.append(state)
                            counts["RUNNING" if state.state in states.ACTIVE else "PENDING"] += 1
                for state in ended.values():
                    counts["FAILED" if state.failed else "SUCCEEDED"] += 1
                observer.progress(counts, total)
                failed_now = [(i, s) for i, s in new if s.failed]
                for i, s in new:
                    if not s.failed:
                        broken.add(manifest.fovs[i], True)
                if failed_now:
                    if not self.accounting:
                        codes = self._exit_codes([s.name for _, s in failed_now])
                        for _, s in failed_now:
                            s.exit_code = codes.get(s.name, s.exit_code)
                    found = []
                    for i, s in failed_now:
                        found.append(self.failure_of(sub, manifest, i, s, read_tail=tails > 0))
                        tails -= 1
                    failures.extend(found)
                    observer.failed(found)
                    for f in found:
                        broken.add(f.fov, False, signature(error_line(f.tail) or f.reason, f.fov))
                if broken.error and len(ended) < total:
                    cancelled = self.cancel_jobs(sub.job_ids)
                    return FollowOutcome("stopped_early", failures, stopped_early=broken.error, cancelled=cancelled)
                if max_core_hours is not None:
                    used = core_hours([*ended.values(), *running])
                    if used > max_core_hours:
                        cancelled = self.cancel_jobs(sub.job_ids)
                        return FollowOutcome("over_budget", failures, cost_usd=used, cancelled=cancelled)
                if sub.merge_job_id:
                    merge_state = seen.get(sub.merge_job_id)
                merged = storage.join(manifest.run_root, MERGED_NAME)
                if failures and len(ended) >= total:
                    if sub.merge_job_id and (merge_state is None or not merge_state.ended):
                        self.commands.scancel([sub.merge_job_id])  # it would refuse a run with FOVs missing
                    return FollowOutcome("fovs_failed", failures)
                if sub.merge_job_id and len(ended) >= total and (merge_state is None or merge_state.ended):
                    if merge_state is None or merge_state.state == states.SUCCEEDED:
                        if storage.exists(merged):
                            return FollowOutcome("merged", failures)
                        if merge_state is not None:
                            return FollowOutcome("merged_file_missing", failures)
                    if merge_state is not None:
                        return FollowOutcome("merge_failed", failures, self.merge_failure(sub, merge_state))
                    if not self.accounting:  # squeue forgot it (MinJobAge) and it merged nothing
                        gone = states.JobState(sub.merge_job_id, None, "FAILED",
                                               reason="ended without output; Slurm no longer lists it")
                        return FollowOutcome("merge_failed", failures, self.merge_failure(sub, gone))
                if not sub.merge_job_id and len(ended) >= total:
                    return FollowOutcome("processed", failures)
                self.sleep(delay)
                delay = min(delay * POLL_FACTOR, self.poll_max)
        except KeyboardInterrupt:
            return FollowOutcome("interrupted", failures, cancelled=self.cancel_jobs(sub.job_ids))
        finally:
            observer.close()

    def merge_failure(self, sub: SlurmSubmission, state: states.JobState) -> SlurmFailure:
        if not self.accounting and not state.reason.startswith("ended without output"):
            state.exit_code = self._exit_codes([state.name]).get(state.name, state.exit_code)
        tail = _tail(sub.merge_log())
        line = error_line(tail)
        why = f" ({state.reason})" if state.reason else ""
        return SlurmFailure(fov=None, index=None, reason=f"Slurm {state.state}{why}" + (f": {line}" if line else ""),
                            exit_code=state.exit_code, job_id=state.name, log=sub.merge_log(), tail=tail,
                            out_of_memory=state.state == states.OUT_OF_MEMORY, state=state.state)

    # -- status and cancel --------------------------------------------------------------------

    def cancel_jobs(self, job_ids: list[str]) -> list[str]:
        """``scancel`` the jobs of ``job_ids`` not ended yet (only these: this run's); returns them.
        If Slurm cannot say which are left, all of them (cancelling an ended job does nothing)."""
        try:
            left = self.active(job_ids, strict=True)
        except StarfishBatchError:
            left = list(job_ids)
        self.commands.scancel(left)
        return left

    def status(self, manifest: Manifest, subs: list[SlurmSubmission]) -> tuple[dict, list[Failure]]:
        """The jobs of every submission and the failures of the latest: (JSON-ready state, failures)."""
        seen = self.poll([i for s in subs for i in s.job_ids])
        jobs = []
        for sub in subs:
            name = sub.jobs_url.rsplit("/", 1)[-1]
            for job in sub.process_jobs:
                tasks = [s for s in seen.values() if s.job_id == job.job_id and s.task is not None]
                summary = collections.Counter(s.state for s in tasks)
                jobs.append({"file": name, "job": PROCESS_FOV, "jobId": job.job_id, "size": job.size,
                             "offset": job.offset, "states": dict(sorted(summary.items()))})
            if sub.merge_job_id:
                state = seen.get(sub.merge_job_id)
                jobs.append({"file": name, "job": MERGE, "jobId": sub.merge_job_id,
                             "state": state.state if state else "UNKNOWN (no longer listed)"})
        latest = subs[-1]
        latest_manifest = Manifest.load(latest.manifest_url)
        failures: list[Failure] = []
        counts = collections.Counter()
        for index in range(len(latest_manifest.fovs)):
            job_id, task = latest.locate(index)
            state = seen.get(f"{job_id}_{task}") or self._gone(latest_manifest, index, job_id, task)
            counts[state.state] += 1
            if state.failed:
                failures.append(self.failure_of(latest, latest_manifest, index, state,
                                                read_tail=len(failures) < MAX_LOG_TAILS))
        state = {"latest_submission": latest.jobs_url, "latest_counts": dict(sorted(counts.items())),
                 "failed_fovs": [f.fov for f in failures], "jobs": jobs}
        return state, failures


def core_hours(found: list[states.JobState]) -> float:
    """CPUs times elapsed time, summed over tasks (what a cluster's fair share charges)."""
    return sum(s.cpus * s.seconds for s in found) / 3600
