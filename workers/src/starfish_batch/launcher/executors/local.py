"""Where the workers run. The local executor starts the same entry points, with the same
environment, that AWS Batch starts in containers (docs/design.md, "Worker environment")."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

from starfish_batch.core import fov_output, printable, resources, storage
from starfish_batch.core.contract import (
    ARRAY_INDEX_VAR,
    LOG_TAIL_LINES,
    LOGS_DIR,
    MERGE,
    PHASE_FD_VAR,
    PROCESS_FOV,
    worker_env,
)
from starfish_batch.core.errors import RECIPE_EXITED
from starfish_batch.core.manifest import Manifest
from starfish_batch.launcher.early_stop import BrokenRecipeWatch, error_line, signature
from starfish_batch.launcher.guardian import GUARDIAN, die_with_parent
from starfish_batch.launcher.outcome import Failure, ProcessOutcome

DEFAULT_MEMORY_PER_FOV = 1.5 * 2**30  # the ISS recipe peaks near 1.05 GB on a 1044 x 1390 FOV
STOP_GRACE_SECONDS = 10.0
"""How long a stopped worker has, after SIGTERM, to remove its temporary files before SIGKILL."""
TIMEOUT_GRACE_SECONDS = 2.0
"""The same for a worker past --fov-timeout: it is stuck in its recipe, with nothing to publish."""
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _spawn(command: list[str], preexec_fn=None, **kwargs) -> subprocess.Popen:
    """A worker in its own process group (whatever it starts goes with it when it is stopped),
    that dies with the launcher, even a killed one (``guardian``).

    Ctrl-C and SIGTERM are held from before the fork until the caller has recorded the worker
    (``_held``), so that none escapes being stopped; the worker itself starts with them open.
    """
    launcher = os.getpid()

    def child_setup() -> None:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        die_with_parent(launcher)
        if preexec_fn is not None:
            preexec_fn()

    proc = subprocess.Popen(command, start_new_session=True, preexec_fn=child_setup, **kwargs)
    GUARDIAN.watch(proc.pid)
    return proc


def _end_group(proc: subprocess.Popen) -> None:
    """Once a worker has ended: whatever it left in its process group is killed."""
    _signal_group(proc, signal.SIGKILL)
    GUARDIAN.release(proc.pid)


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
        _end_group(proc)  # anything the worker started and left behind


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


def _error_line(lines: list[str], fov: str, code: int, oom_killed: bool = False,
                phase: str = "", timed_out: float | None = None) -> str:
    if timed_out is not None:
        return f"FOV {printable.escape(fov)}: timed out after {timed_out:g} s (--fov-timeout)"
    line = error_line(lines)
    if line:
        return line
    if phase == "recipe" and code >= 0:  # os._exit in the recipe: no error line, no table
        return f"FOV {printable.escape(fov)}: {RECIPE_EXITED} (code {code}) before returning a table"
    if code == 0:
        return f"FOV {printable.escape(fov)}: the worker exited with status 0 without writing its output"
    if oom_killed:
        return f"FOV {fov}: killed by the kernel's OOM killer (signal SIGKILL): out of memory"
    if code < 0:
        return f"FOV {printable.escape(fov)}: killed by signal {signal.Signals(-code).name}"
    return f"FOV {printable.escape(fov)}: exited with status {code} and no error line"


def _is_out_of_memory(reason: str, oom_killed: bool) -> bool:
    """Killed by the OOM killer, or Python could not allocate (a ``ulimit -v`` limit)."""
    return oom_killed or "MemoryError" in reason


class _Child:
    """One worker subprocess whose combined output goes to a log file we tail afterwards."""

    def __init__(self, index: int, fov: str, command: list[str], env: dict[str, str],
                 log_path: Path, cpus: set[int] | None, timeout: float | None = None):
        self.index, self.fov, self.log_path = index, fov, log_path
        self.started = time.perf_counter()
        self.timeout = timeout
        self.timed_out: float | None = None  # the timeout it was stopped at
        self.kill_at: float | None = None  # SIGKILL then, if SIGTERM did not end it
        self.peak_memory_bytes: int | None = None
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in finish(); a resume appends
        self._log.write(f"--- process-fov FOV {printable.escape(fov)} (index {index})\n".encode())
        self._log.flush()

        def pin() -> None:
            if cpus:
                os.sched_setaffinity(0, cpus)

        self._phase_r, phase_w = os.pipe()
        os.set_blocking(self._phase_r, False)
        self.phase = ""
        try:
            self.proc = _spawn(
                command, env={**env, PHASE_FD_VAR: str(phase_w)}, stdout=self._log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, preexec_fn=pin if cpus else None, pass_fds=(phase_w,),
            )
        finally:
            os.close(phase_w)

    def check_timeout(self, now: float) -> None:
        """Past --fov-timeout: SIGTERM to its group, SIGKILL shortly after."""
        if self.timeout is None:
            return
        if self.timed_out is None and now - self.started > self.timeout:
            self.timed_out = self.timeout
            self.kill_at = now + TIMEOUT_GRACE_SECONDS
            _signal_group(self.proc, signal.SIGTERM)
        elif self.kill_at is not None and now > self.kill_at:
            _signal_group(self.proc, signal.SIGKILL)
            self.kill_at = None

    def _read_phase(self) -> None:
        try:
            while chunk := os.read(self._phase_r, 4096):
                lines = chunk.decode("ascii", "replace").split()
                self.phase = lines[-1] if lines else self.phase
        except BlockingIOError:
            pass
        except OSError:
            pass

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
        """The worker has ended: its group is ended too; returns its log's last lines (bounded)."""
        _end_group(self.proc)
        self._read_phase()
        os.close(self._phase_r)
        self._log.close()
        return printable.read_tail(self.log_path, LOG_TAIL_LINES)


def _committed(manifest: Manifest, child: _Child) -> bool:
    """The worker said it committed its FOV, and the FOV's record and table are there."""
    if child.phase != "committed":
        return False
    record = fov_output.read_record(manifest, child.fov)
    return record is not None and fov_output.mismatch(
        record, storage.size(manifest.fov_url(child.fov, ".nc"))) is None


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
                 progress: bool = True, max_failures: int | None = None,
                 fov_timeout: float | None = None):
        self.workers = workers
        self.fov_timeout = fov_timeout  # seconds a worker may run before it is stopped, as failed
        self.log_dir = log_dir
        self.progress = progress
        self.max_failures = max_failures  # stop starting FOVs when the first ones all fail alike

    @staticmethod
    def default_log_dir(manifest: Manifest) -> Path:
        """``<run>/logs`` for results on disk; a temporary folder when results go to S3."""
        if storage.is_s3(manifest.run_root):
            return Path(tempfile.mkdtemp(prefix=f"starfish-batch-{manifest.run_id}-logs-"))
        return Path(manifest.run_root) / LOGS_DIR

    def process(self, manifest: Manifest, manifest_url: str) -> ProcessOutcome:
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
                                               log_dir / f"{manifest.keys[fov]}.log", slots[slot],
                                               self.fov_timeout)
                time.sleep(0.05)
                for slot, child in list(running.items()):
                    code = child.poll()
                    if code is None:
                        child.check_timeout(time.perf_counter())
                        continue
                    tail = child.finish()
                    outcome.fov_seconds[child.fov] = time.perf_counter() - child.started
                    del running[slot]
                    free_slots.append(slot)
                    if code == 0 and child.timed_out is None and _committed(manifest, child):
                        outcome.succeeded.append(child.fov)
                        watch.add(child.fov, True)
                    else:
                        kills = resources.oom_kills() if code == -signal.SIGKILL else None
                        oom_killed = None not in (kills, oom_kills) and kills > oom_kills
                        reason = printable.clip(_error_line(tail, child.fov, code, oom_killed,
                                                            child.phase, child.timed_out))
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
            GUARDIAN.close()  # every group it watched has ended: it exits with nothing to do
        outcome.seconds = time.perf_counter() - started
        return outcome

    def merge(self, manifest: Manifest, manifest_url: str, allow_partial: bool = False) -> tuple[int, list[str]]:
        """Runs ``merge-batch-job`` as Batch would: a process with the same environment."""
        command = worker_command(MERGE) + (["--allow-partial"] if allow_partial else [])
        proc: subprocess.Popen | None = None
        try:  # a Ctrl-C held while the merge starts is raised as the hold ends: inside this try
            with _held():
                proc = _spawn(command, env={**os.environ, **worker_env(manifest_url, manifest.sha256)},
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            out, _ = proc.communicate()
        except KeyboardInterrupt:  # the merge stops with the launcher; its caller says how to resume
            if proc is not None:
                stop([proc])
            raise
        finally:
            if proc is not None:
                _end_group(proc)
            GUARDIAN.close()
        return proc.returncode, out.decode("utf-8", "replace").splitlines()
