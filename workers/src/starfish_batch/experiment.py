"""Open a SpaceTx experiment and list its fields of view, by the names the experiment gives them."""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING

from .errors import ExperimentError

if TYPE_CHECKING:
    from starfish import Experiment

log = logging.getLogger(__name__)


def _as_starfish_url(url: str) -> str:
    # starfish takes local paths, file://, http(s):// and s3:// alike.
    return url


def open_experiment(url: str) -> Experiment:
    """Open ``experiment.json`` at ``url``; any failure is one line naming the URL."""
    from starfish import Experiment

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Experiment.from_json(_as_starfish_url(url))
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ExperimentError(f"cannot open experiment {url}: {type(exc).__name__}: {reason}") from exc


def fov_names(experiment: Experiment, url: str = "experiment") -> list[str]:
    """The experiment's own FOV names, sorted as starfish sorts them; never guessed."""
    names = [fov.name for fov in experiment.fovs()]
    if not names:
        raise ExperimentError(f"experiment {url} has no field of view")
    return names


def list_fovs(url: str) -> list[str]:
    return fov_names(open_experiment(url), url)
