"""How many FOVs each process-fov child runs: children of a few minutes, not of one FOV.

Every child pays a start-up before its first FOV: the container's start, on Fargate a full pull
of the image (Fargate caches no image), then Python's start and ``import starfish``. AWS's Batch
best practice is to group work so that jobs run 3-5 minutes; a quote (``estimate``) gives a
FOV's seconds and the start-up it measured, from which ``choose`` packs the run. Pure arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from starfish_batch.launcher.executors.batch.jobs import MAX_ARRAY_SIZE

DEFAULT_CHILD_MINUTES = 5.0
CONTAINER_START_SECONDS = {"FARGATE": 30.0, "EC2": 5.0}
"""A container's start before the image is there: Fargate provisions a task and its network
interface (tens of seconds), an EC2 host with the agent running starts a container in seconds.
Typical values, not measured here."""
PULL_BYTES_PER_SECOND = 50e6
"""The rate at which the quote prices an image pull (compressed layers, ECR to the host)."""


@dataclass(frozen=True)
class Startup:
    """One child's start-up, in seconds, and where each part comes from."""

    container_start: float
    image_pull: float
    python_import: float  # measured: a sampled worker's wall time minus its FOV's own seconds
    image_bytes: int | None = None  # the process-fov image's compressed layers, when known
    pull_bytes_per_second: float = PULL_BYTES_PER_SECOND

    @property
    def seconds(self) -> float:
        return self.container_start + self.image_pull + self.python_import

    def to_dict(self) -> dict:
        return {**asdict(self), "seconds": round(self.seconds, 3)}


def startup(compute_type: str | None, python_import: float, image_bytes: int | None = None,
            pull_bytes_per_second: float = PULL_BYTES_PER_SECOND) -> Startup:
    """The start-up of one child on ``compute_type`` (None: a local process, no container).

    Fargate pulls the whole image for every task; an EC2 host pulls it once and keeps it, so
    its children pay no pull after the first."""
    kind = (compute_type or "").upper()
    if not kind:
        return Startup(0.0, 0.0, max(0.0, python_import), image_bytes, pull_bytes_per_second)
    fargate = kind.startswith("FARGATE")
    pull = (image_bytes or 0) / pull_bytes_per_second if fargate else 0.0
    return Startup(CONTAINER_START_SECONDS["FARGATE" if fargate else "EC2"], round(pull, 3),
                   max(0.0, python_import), image_bytes, pull_bytes_per_second)


def choose(n_fovs: int, seconds_per_fov: float, startup_seconds: float, slots: int,
           child_minutes: float = DEFAULT_CHILD_MINUTES, max_array: int = MAX_ARRAY_SIZE) -> int:
    """FOVs per child: as many as fit in ``child_minutes`` after the start-up, but never so
    many that fewer children than ``slots`` (the FOVs the compute environment runs at once:
    max vCPUs over each job's) leave capacity idle; and enough that the children fit one
    array of ``max_array`` when the slots allow it."""
    if n_fovs <= 1:
        return 1
    room = child_minutes * 60 - startup_seconds
    per_child = max(1, math.floor(room / seconds_per_fov)) if seconds_per_fov > 0 else n_fovs
    per_child = max(per_child, math.ceil(n_fovs / max_array))
    keep_busy = max(1, n_fovs // max(1, slots))  # children >= slots
    return max(1, min(per_child, keep_busy, n_fovs))


def children(n_fovs: int, fovs_per_job: int) -> int:
    return -(-n_fovs // fovs_per_job) if n_fovs else 0


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def launch_line(n_fovs: int, fovs_per_job: int, child_seconds: float | None = None) -> str:
    """``9,600 FOVs in 1,200 children of 8 (about 5 min each)``."""
    line = f"{n_fovs:,} FOVs in {children(n_fovs, fovs_per_job):,} children of {fovs_per_job}"
    if child_seconds is not None:
        line += f" (about {_duration(child_seconds)} each)"
    return line
