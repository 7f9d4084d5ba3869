"""The Slurm calls of a run: check, submit, follow, describe and cancel; never prints.

It returns the objects the Batch executor returns (``FollowOutcome``, ``Failure``) and tells a
``base.Observer`` what it sees while following, so the CLI and the console print both alike.
One ``squeue`` (or, where the cluster keeps accounting, one ``sacct``) call per poll covers the
whole submission; details of failed tasks are read only when some fail.
"""

from __future__ import annotations

import collections
import os
import time
from collections.abc import Callable

from starfish_batch.core import storage
from starfish_batch.core.contract import LOGS_DIR, MAX_LOG_TAILS, MERGE, PROCESS_FOV
from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.core.manifest import Manifest
from starfish_batch.launcher.executors.base import Observer, SilentObserver
from starfish_batch.launcher.executors.batch.jobs import ProcessJob, jobs_url_for, submission_label
from starfish_batch.launcher.executors.local import worker_command
from starfish_batch.launcher.executors.slurm import failures as slurm_failures
from starfish_batch.launcher.executors.slurm import states
from starfish_batch.launcher.executors.slurm.commands import ACCOUNTING_OFF, SlurmCommands
from starfish_batch.launcher.executors.slurm.follow import SlurmFollow
from starfish_batch.launcher.executors.slurm.jobs import SlurmSubmission, array_parts, job_name, job_script, submissions
from starfish_batch.launcher.executors.slurm.options import DEFAULT_MERGE_MEMORY_MIB, SlurmOptions, container_runtime
from starfish_batch.launcher.outcome import Failure, FollowOutcome

POLL_INITIAL_S = 2.0
POLL_MAX_S = float(os.environ.get("STARFISH_BATCH_SLURM_POLL_MAX", "30"))
DEFAULT_MAX_ARRAY_SIZE = 1001  # Slurm's default MaxArraySize


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
        return submissions(manifest.run_root, manifest.run_id)

    def worker(self, entry_point: str, manifest: Manifest, log_dir: str) -> list[str]:
        """The worker's entry point: beside this launcher's Python (the local executor's), or
        in the image through apptainer, with the run's folders bound."""
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

    def submit(self, manifest: Manifest, manifest_url: str, observer: Observer | None = None,
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

    # -- following ----------------------------------------------------------------------------

    def follow(self, manifest: Manifest, submission: SlurmSubmission, observer: Observer | None = None,
               max_failures: int | None = None, *, max_core_hours: float | None = None) -> FollowOutcome:
        """Follow the jobs until the merge ends, or every FOV ended and some failed (the merge
        is then cancelled). The first ``max_failures`` FOVs all failing with one error, or the
        run's core-hours passing ``max_core_hours``, cancel the rest. Ctrl-C (and SIGTERM)
        cancel this submission's jobs: ``interrupted``."""
        return SlurmFollow(self, manifest, submission, observer or SilentObserver(),
                           max_failures, max_core_hours).until_end()

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

    def status(self, manifest: Manifest, submissions: list[SlurmSubmission]) -> tuple[dict, list[Failure]]:
        """The jobs of every submission and the failures of the latest: (JSON-ready state, failures)."""
        seen = self.poll([i for s in submissions for i in s.job_ids])
        jobs = []
        for sub in submissions:
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
        latest = submissions[-1]
        latest_manifest = Manifest.load(latest.manifest_url)
        failures: list[Failure] = []
        counts = collections.Counter()
        for index in range(len(latest_manifest.fovs)):
            job_id, task = latest.locate(index)
            state = seen.get(f"{job_id}_{task}") or slurm_failures.gone(
                latest_manifest, index, job_id, task, self.accounting)
            counts[state.state] += 1
            if state.failed:
                failures.append(slurm_failures.failure_of(latest, latest_manifest, index, state,
                                                          read_tail=len(failures) < MAX_LOG_TAILS))
        state = {"latest_submission": latest.jobs_url, "latest_counts": dict(sorted(counts.items())),
                 "failed_fovs": [f.fov for f in failures], "jobs": jobs}
        return state, failures

