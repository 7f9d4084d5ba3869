"""What an executor returns: which FOVs failed and how, for the CLI and the console to print.

Both executors report through these types; neither prints, chooses an exit code or writes a
hint (``cli`` and ``console`` do, for both alike).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starfish_batch.core import printable
from starfish_batch.core.errors import RECIPE_EXITED, RECIPE_RAISED, RECIPE_RETURNED
from starfish_batch.launcher.early_stop import error_line


@dataclass
class Failure:
    """A failed FOV (or the failed merge, ``fov`` None), from either executor."""

    fov: str | None
    index: int | None
    reason: str
    exit_code: int | None
    job_id: str | None = None
    log: str | None = None  # where the whole log is: a file, or "<log group> <log stream>"
    tail: list[str] | None = None  # the last lines of that log, when they were read
    attempts: int | None = None  # Batch's attempts of the job (retries + 1), when it says
    out_of_memory: bool = False  # killed for memory (Batch's reason, or the kernel's OOM killer)
    peak_memory_bytes: int | None = None  # local: the worker's peak resident memory

    @property
    def is_recipe_error(self) -> bool:
        """The recipe failed on good data: resuming would run the same recipe and fail again.

        Said by the worker's error line: the reason locally; on Batch (whose reason is the
        container's) the last such line of the log tail, when it was read."""
        line = error_line(self.tail) if self.tail else None
        return any(f": {kind} " in text for kind in (RECIPE_RAISED, RECIPE_RETURNED, RECIPE_EXITED)
                   for text in (self.reason, line or ""))

    @property
    def cause(self) -> str:
        """The reason without this FOV's name, so FOVs that failed alike are told once."""
        if self.fov is None:
            return self.reason
        reason = self.reason
        for name in dict.fromkeys((self.fov, printable.escape(self.fov))):
            reason = reason.replace(f"FOV {name}: ", "").replace(f"FOV {name} ", "FOV ... ")
        return reason

    def headline(self) -> str:
        what = f"FOV {printable.line(self.fov)} (index {self.index})" if self.fov is not None else "merge"
        code = "none" if self.exit_code is None else str(self.exit_code)
        job = f"; job {self.job_id}" if self.job_id else ""
        return f"{what} failed: {printable.line(self.reason)}; exit code {code}{job}"


@dataclass
class ProcessOutcome:
    """The local executor's pass over a manifest's FOVs."""

    succeeded: list[str] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False
    fov_seconds: dict[str, float] = field(default_factory=dict)  # each worker's wall time
    stopped_early: str | None = None  # the one error the first FOVs all failed with
    not_started: list[str] = field(default_factory=list)  # FOVs left unstarted by that stop


@dataclass
class FollowOutcome:
    """How following a Batch submission ended.

    ``state`` is one of ``merged``, ``merged_file_missing``, ``merge_failed``, ``fovs_failed``,
    ``interrupted``, ``processed`` (every FOV of a submission without a merge succeeded), or
    ``stopped_early`` (the first FOVs all failed alike; the rest and the merge were cancelled),
    or ``over_budget`` (the estimated cost passed ``--max-cost``; likewise cancelled).
    """

    state: str
    failures: list[Failure] = field(default_factory=list)
    merge_failure: Failure | None = None
    stopped_early: str | None = None  # state "stopped_early": the error the first FOVs shared
    cancelled: list[str] = field(default_factory=list)  # job ids terminated or cancelled then
    cost_usd: float | None = None  # state "over_budget": the estimated cost that passed --max-cost
