"""A SpaceTx experiment read the way a batch run needs it: names for the launcher, one FOV per worker.

``Experiment.from_json`` reads every FOV's documents; at thousands of FOVs each worker would
pay for the whole experiment. :func:`plan` lists the FOV names from the collection documents
and proves one FOV opens; :func:`open_fov` gives a worker its own FOV and the codebook.
"""

from __future__ import annotations

from starfish_batch.core.errors import ExperimentError
from starfish_batch.core.experiment.documents import ExperimentDocument
from starfish_batch.core.experiment.fov import FovView
from starfish_batch.core.experiment.fov import open_fov as _open_fov
from starfish_batch.core.experiment.positions import read_layout
from starfish_batch.core.experiment.urls import normalize
from starfish_batch.core.layout import FovLayout

__all__ = ["FovView", "ExperimentDocument", "list_fovs", "open_fov", "plan", "plan_inputs", "image_types"]


def list_fovs(url: str) -> list[str]:
    """The experiment's own FOV names, sorted as starfish sorts them; never guessed."""
    return ExperimentDocument.open(normalize(url)).fov_names()


def plan(url: str) -> list[str]:
    """The FOV names, once the codebook and the first FOV's documents are shown to open."""
    return plan_inputs(url)[0]


def plan_inputs(url: str, expected: dict[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """:func:`plan`, and the sha256 of every document it read (URL -> digest) for the manifest.

    With ``expected`` (a run's recorded digests, for a resume) a changed document is refused.
    """
    experiment = ExperimentDocument.open(normalize(url), expected)
    names = experiment.fov_names()
    _open_fov(experiment, names[0], fetch=False)
    return names, dict(experiment.digests.seen)


def image_types(url: str, expected: dict[str, str] | None = None) -> list[str]:
    """The experiment's image types (``primary``, ``nuclei``...), which a recipe's
    ``fov.get_image(...)`` must name; ``expected``: the digests :func:`plan_inputs` recorded, so
    that this is the experiment.json planned."""
    return list(ExperimentDocument.open(normalize(url), expected).images)


def open_fov(url: str, name: str, expected: dict[str, str] | None = None) -> FovView:
    """FOV ``name`` of the experiment at ``url``, its tiles fetched, and the codebook.

    ``expected`` (URL -> sha256, the run's manifest) refuses documents changed since the run started.
    """
    return _open_fov(ExperimentDocument.open(normalize(url), expected), name)


def plan_layout(url: str, names: list[str]):
    """The run's :class:`~starfish_batch.core.layout.FovLayout`: every FOV's primary tile set read
    once (side by side) for its stage extent; see :mod:`.positions`."""
    try:
        experiment = ExperimentDocument.open(normalize(url))
    except ExperimentError:  # planning read it a moment ago; without positions, nothing is dropped
        return FovLayout.build(names, {})
    return read_layout(experiment, names)
