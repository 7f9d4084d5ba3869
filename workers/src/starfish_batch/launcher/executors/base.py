"""What the commands need of a queue executor (AWS Batch, Slurm), so both stay interchangeable.

The commands (run, follow, estimate, status) submit a run, follow it and describe it through
these methods only; each executor keeps its own submission type (``SubmittedRun``,
``SlurmSubmission``) and its own extra limits for ``follow``. Cancelling is not in the
interface: Batch terminates started jobs and cancels queued ones (``cancel(run_id, runs)``,
two lists), Slurm scancels job ids (``cancel_jobs(ids)``), and each command calls its own.
tests/unit/test_executors_interface.py fails when an executor's signature drifts from these.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from starfish_batch.core.manifest import Manifest
from starfish_batch.launcher.outcome import Failure, FollowOutcome


class Observer(Protocol):
    """What an executor tells while it works (the launcher prints it; tests may record it)."""

    def warn(self, text: str) -> None: ...

    def progress(self, counts: dict[str, int], total: int) -> None: ...

    def failed(self, failures: list[Failure]) -> None: ...

    def close(self) -> None: ...


class SilentObserver:
    """An observer that tells nothing: the default when a caller gives none."""

    def warn(self, text: str) -> None:
        pass

    def progress(self, counts: dict[str, int], total: int) -> None:
        pass

    def failed(self, failures: list[Failure]) -> None:
        pass

    def close(self) -> None:
        pass


class Submission(Protocol):
    """What both executors' submissions say: the jobs of one submission of a run, and its file."""

    run_id: str
    manifest_url: str
    jobs_url: str
    merge_job_id: str

    @property
    def job_ids(self) -> list[str]: ...

    def to_json(self) -> str: ...


SubmissionT = TypeVar("SubmissionT", bound=Submission)


class QueueExecutor(Protocol[SubmissionT]):
    """An executor that hands a run to a queue (AWS Batch, Slurm) and follows it there."""

    def preflight(self, manifest: Manifest) -> list[str]:
        """Checks before anything is uploaded or submitted; returns warnings to print."""
        ...

    def submit(self, manifest: Manifest, manifest_url: str, observer: Observer | None = None,
               merge: bool = True, resources: dict[str, Any] | None = None,
               escalated_from: dict[str, str] | None = None) -> SubmissionT:
        """Submit the process-fov jobs and (unless ``merge`` is false) the merge after them."""
        ...

    def follow(self, manifest: Manifest, submission: SubmissionT, observer: Observer | None = None,
               max_failures: int | None = None, **limits: Any) -> FollowOutcome:
        """Follow a submission to its end; ``limits`` are the executor's own keyword-only ones."""
        ...

    def status(self, manifest: Manifest, submissions: list[SubmissionT]) -> tuple[dict, list[Failure]]:
        """The jobs of every submission and the failures of the latest: (JSON-ready state, failures)."""
        ...
