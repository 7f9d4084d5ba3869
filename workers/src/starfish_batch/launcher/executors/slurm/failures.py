"""A failed Slurm task, told as the Batch executor tells one: its state, its reason with the
error line of its log, its exit code (from ``scontrol`` where no accounting keeps it) and tail."""

from __future__ import annotations

import collections
from dataclasses import dataclass

from starfish_batch.core import fov_output
from starfish_batch.core.contract import LOG_TAIL_LINES
from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.core.manifest import Manifest
from starfish_batch.launcher.early_stop import error_line
from starfish_batch.launcher.executors.slurm import states
from starfish_batch.launcher.executors.slurm.commands import SlurmCommands
from starfish_batch.launcher.executors.slurm.jobs import SlurmSubmission
from starfish_batch.launcher.outcome import Failure

GONE = "ended without output; Slurm no longer lists it"
WHY = {"TIMEOUT": "ran past its time limit (--time)", "OUT_OF_MEMORY": "used more than its memory (--mem)",
       "NODE_FAIL": "its node failed", "PREEMPTED": "preempted by another job", "CANCELLED": "cancelled"}


@dataclass
class SlurmFailure(Failure):
    """A failed FOV with the Slurm state its task ended in."""

    state: str = ""

    @property
    def retryable(self) -> bool:
        """The node failed or the task was preempted: the FOV itself may be fine."""
        return self.state in states.RETRYABLE


def log_tail(path: str, lines: int = LOG_TAIL_LINES) -> list[str]:
    try:
        with open(path, "rb") as f:
            found = [line.decode("utf-8", "replace").rstrip("\n") for line in collections.deque(f, maxlen=lines)]
    except OSError as exc:
        return [f"(no log at {path}: {exc.strerror or exc}; the job may not have started)"]
    return found or [f"(log {path} is empty)"]


def gone(manifest: Manifest, index: int, job_id: str, task: int, accounting: bool) -> states.JobState:
    """A task Slurm does not list. With accounting it is not recorded yet (slurmdbd lags
    the controller): pending. Without, squeue forgot it MinJobAge after it ended: done if
    its FOV's output is whole, else failed with no more said."""
    if accounting:
        return states.JobState(job_id, task, "PENDING", reason="not in the accounting records yet")
    fov = manifest.fovs[index]
    if fov_output.done_record(manifest, fov) is not None:
        return states.JobState(job_id, task, states.SUCCEEDED)
    return states.JobState(job_id, task, "FAILED", reason=GONE)


def exit_codes(commands: SlurmCommands, names: list[str]) -> dict[str, int | None]:
    """Exit codes of ended tasks, from ``scontrol show job`` (one call per array)."""
    found: dict[str, int | None] = {}
    for array in dict.fromkeys(n.split("_", 1)[0] for n in names):
        try:
            shown = states.parse_show_job(commands.run("scontrol", "-o", "show", "job", array))
        except StarfishBatchError:
            continue
        found.update({n: states.exit_code_of(f) for n, f in shown.items()})
    return found


def failure_of(sub: SlurmSubmission, manifest: Manifest, index: int, state: states.JobState,
               read_tail: bool) -> SlurmFailure:
    """The failure of FOV ``index``; its log is read for its error line and out-of-memory
    notice, and its tail kept if ``read_tail``."""
    path = sub.task_log(state.job_id, state.task)
    tail = log_tail(path)
    line = error_line(tail)
    why = WHY.get(state.state, state.reason)
    reason = f"Slurm {state.state}" + (f" ({why})" if why else "") + (f": {line}" if line else "")
    oom = state.state == states.OUT_OF_MEMORY or states.mentions_out_of_memory(tail) or "MemoryError" in reason
    return SlurmFailure(fov=manifest.fovs[index], index=index, reason=reason, exit_code=state.exit_code,
                        job_id=state.name, log=path, tail=tail if read_tail else None,
                        out_of_memory=oom, state=state.state)


def merge_failure(commands: SlurmCommands, accounting: bool, sub: SlurmSubmission,
                  state: states.JobState) -> SlurmFailure:
    """The failed merge of ``sub``, with the tail of its log."""
    if not accounting and not state.reason.startswith(GONE):
        state.exit_code = exit_codes(commands, [state.name]).get(state.name, state.exit_code)
    tail = log_tail(sub.merge_log())
    line = error_line(tail)
    why = f" ({state.reason})" if state.reason else ""
    return SlurmFailure(fov=None, index=None, reason=f"Slurm {state.state}{why}" + (f": {line}" if line else ""),
                        exit_code=state.exit_code, job_id=state.name, log=sub.merge_log(), tail=tail,
                        out_of_memory=state.state == states.OUT_OF_MEMORY, state=state.state)
