"""Where the workers run. The local executor starts the same entry points, with the same
environment, that AWS Batch starts in containers (docs/design.md, "Worker environment")."""

from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from starfish_batch import resources, storage
from starfish_batch.contract import ARRAY_INDEX_VAR, LOG_TAIL_LINES, LOGS_DIR, MERGE, PROCESS_FOV, worker_env
from starfish_batch.launcher.early_stop import BrokenRecipeWatch, error_line, signature
from starfish_batch.launcher.outcome import Failure, ProcessOutcome
from starfish_batch.manifest import Manifest

DEFAULT_MEMORY_PER_FOV = 1.5 * 2**30  # the ISS recipe peaks near 1.05 GB on a 1044 x 1390 FOV
STOP_GRACE_SECONDS = 10.0
"""How long a stopped worker has, after SIGTERM, to remove its temporary files before SIGKILL."""
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _spawn(command: list[str], preexec_fn=None, **kwargs) -> subprocess.Popen:
    """A worker in its own process group (whatever it starts goes with it when it is stopped).

    Ctrl-C and SIGTERM are held from before the fork until the caller has recorded the worker
    (``_held``), so that none escapes being stopped; the worker itself starts with them open.
    """

    def child_setup() -> None:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        if preexec_fn is not None:
            preexec_fn()

    return subprocess.Popen(command, start_new_session=True, preexec_fn=child_setup, **kwargs)


class _held:
    """Ctrl-C and SIGTERM wait (in the launcher) while a worker is started and recorded."""

    def __enter__(self) -> None:
        self.old = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)

    def __exit__(self, *exc) -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, self.old)


def stop(procs: list[subprocess.Popen], grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM to each worker's process group, then SIGKILL to those still there after ``grace``."""
    for proc in procs:
        _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
        _signal_group(proc, signal.SIGKILL)  # anything the worker started and left behind


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def worker_command(entry_point: str) -> list[str]:
    """The console script as installed beside this interpreter (the image's ``command``)."""
    script = Path(sys.executable).with_name(entry_point)
    if script.exists():
        return [str(script)]
    found = shutil.which(entry_point)
    if found:
        return [found]
    module = {PROCESS_FOV: "process_fov", MERGE: "merge.job"}[entry_point]
    return [sys.executable, "-m", f"starfish_batch.{module}"]


def default_workers(n_fovs: int, memory_per_fov: float = DEFAULT_MEMORY_PER_FOV) -> int:
    """As many workers as cores, fewer if the memory would not hold them."""
    cpus = resources.available_cpus()
    memory = resources.available_memory_bytes()
    by_memory = int(memory // memory_per_fov) if memory else cpus
    return max(1, min(cpus, by_memory, n_fovs))


def _error_line(lines: list[str], fov: str, code: int, oom_killed: bool = False) -> str:
    line = error_line(lines)
    if line:
        return line
    if oom_killed:
        return f"FOV {fov}: killed by the kernel's OOM killer (signal SIGKILL): out of memory"
    if code < 0:
        return f"FOV {fov}: killed by signal {signal.Signals(-code).name}"
    return f"FOV {fov}: exited with status {code} and no error line"


def _is_out_of_memory(reason: str, oom_killed: bool) -> bool:
    """Killed by the OOM killer, or Python could not allocate (a ``ulimit -v`` limit)."""
    return oom_killed or "MemoryError" in reason


class _Child:
    """One worker subprocess whose combined output goes to a log file we tail afterwards."""

    def __init__(self, index: int, fov: str, command: list[str], env: dict[str, str],
                 log_path: Path, cpus: set[int] | None):
        self.index, self.fov, self.log_path = index, fov, log_path
        self.started = time.perf_counter()
        self.peak_memory_bytes: int | None = None
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in finish(); a resume appends
        self._log.write(f"--- process-fov FOV {fov} (index {index})\n".encode())
        self._log.flush()

        def pin() -> None:
            if cpus:
                os.sched_setaffinity(0, cpus)

        self.proc = _spawn(
            command, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, preexec_fn=pin if cpus else None,
        )

    def poll(self) -> int | None:
        """The exit code once the worker has ended; its peak memory from the kernel's
        accounting of it (``wait4``), which outlives the process."""
        if self.proc.returncode is not None:
            return self.proc.returncode
        try:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
        except ChildProcessError:
            return self.proc.poll()
        if pid == 0:
            return None
        self.peak_memory_bytes = usage.ru_maxrss * 1024
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        return self.proc.returncode

    def finish(self) -> list[str]:
        self._log.close()
        with open(self.log_path, "rb") as f:
            return [line.decode("utf-8", "replace").rstrip("\n")
                    for line in collections.deque(f, maxlen=LOG_TAIL_LINES)]


def _cpu_slots(workers: int) -> list[set[int] | None]:
    """Give each worker its own cores when there are enough, so its thread pools fit them."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return [None] * workers
    if workers > len(cpus) or workers <= 1:
        return [None] * workers
    per = len(cpus) // workers
    return [set(cpus[i * per:(i + 1) * per]) for i in range(workers)]


class LocalExecutor:
    """Runs every FOV of a manifest as a ``process-fov`` subprocess, ``workers`` at a time."""

    def __init__(self, workers: int | None = None, log_dir: Path | None = None,
                 progress: bool = True, max_failures: int | None = None):
        self.workers = workers
        self.log_dir = log_dir
        self.progress = progress
        self.max_failures = max_failures  # stop starting FOVs when the first ones all fail alike

    @staticmethod
    def default_log_dir(manifest: Manifest) -> Path:
        """``<run>/logs`` for results on disk; a temporary folder when results go to S3."""
        if storage.is_s3(manifest.run_root):
            import tempfile

            return Path(tempfile.mkdtemp(prefix=f"starfish-batch-{manifest.run_id}-logs-"))
        return Path(manifest.run_root) / LOGS_DIR

    def process(self, manifest: Manifest, manifest_url: str) -> ProcessOutcome:
        from tqdm import tqdm

        fovs = manifest.fovs
        workers = max(1, min(self.workers or default_workers(len(fovs)), len(fovs) or 1))
        log_dir = self.log_dir or self.default_log_dir(manifest)
        log_dir.mkdir(parents=True, exist_ok=True)

        base_env = {**os.environ, **worker_env(manifest_url, manifest.sha256)}
        command = worker_command(PROCESS_FOV)
        slots = _cpu_slots(workers)
        free_slots = list(range(workers))
        pending = list(enumerate(fovs))
        running: dict[int, _Child] = {}
        outcome = ProcessOutcome()
        watch = BrokenRecipeWatch(self.max_failures)
        started = time.perf_counter()
        oom_kills = resources.oom_kills()  # the OOM killer's count before: a rise names a SIGKILL
        bar = tqdm(total=len(fovs), desc="FOVs", unit="fov", disable=not self.progress,
                   file=sys.stderr, dynamic_ncols=True)
        try:
            while pending or running:
                while pending and free_slots:
                    index, fov = pending.pop(0)
                    slot = free_slots.pop(0)
                    env = {**base_env, ARRAY_INDEX_VAR: str(index)}
                    with _held():
                        running[slot] = _Child(index, fov, command, env,
                                               log_dir / f"{manifest.keys[fov]}.log", slots[slot])
                time.sleep(0.05)
                for slot, child in list(running.items()):
                    code = child.poll()
                    if code is None:
                        continue
                    tail = child.finish()
                    outcome.fov_seconds[child.fov] = time.perf_counter() - child.started
                    del running[slot]
                    free_slots.append(slot)
                    if code == 0:
                        outcome.succeeded.append(child.fov)
                        watch.add(child.fov, True)
                    else:
                        kills = resources.oom_kills() if code == -signal.SIGKILL else None
                        oom_killed = None not in (kills, oom_kills) and kills > oom_kills
                        reason = _error_line(tail, child.fov, code, oom_killed)
                        outcome.failed.append(Failure(
                            fov=child.fov, index=manifest.run_index(child.fov), reason=reason,
                            exit_code=code, log=str(child.log_path), tail=tail,
                            out_of_memory=_is_out_of_memory(reason, oom_killed),
                            peak_memory_bytes=child.peak_memory_bytes))
                        watch.add(child.fov, False, signature(reason, child.fov))
                        if watch.error and pending and outcome.stopped_early is None:
                            outcome.stopped_early = watch.error  # the running ones finish
                            outcome.not_started = [fov for _, fov in pending]
                            pending.clear()
                    bar.update(1)
                    bar.set_postfix(failed=len(outcome.failed), refresh=False)
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (signals.sigterm_interrupts)
            outcome.interrupted = True
            stop([child.proc for child in running.values()])
            for child in running.values():
                child.finish()
        finally:
            bar.close()
        outcome.seconds = time.perf_counter() - started
        return outcome

    def merge(self, manifest: Manifest, manifest_url: str, allow_partial: bool = False) -> tuple[int, list[str]]:
        """Runs ``merge-batch-job`` as Batch would: a process with the same environment."""
        command = worker_command(MERGE) + (["--allow-partial"] if allow_partial else [])
        with _held():
            proc = _spawn(command, env={**os.environ, **worker_env(manifest_url, manifest.sha256)},
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            out, _ = proc.communicate()
        except KeyboardInterrupt:  # the merge stops with the launcher; its caller says how to resume
            stop([proc])
            raise
        return proc.returncode, out.decode("utf-8", "replace").splitlines()
