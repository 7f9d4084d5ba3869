"""Checks of an experiment that would otherwise fail every FOV the same way, made once before
the run: a codebook written for other rounds or channels than the primary images have is
caught here, in one line, not as a "recipe error" on each FOV."""

from __future__ import annotations

from starfish_batch.core.errors import ExperimentError
from starfish_batch.core.experiment.documents import PRIMARY

_AXES = (("r", "rounds"), ("c", "channels"))


def check_codebook(codebook_url: str, codebook, tilesets: dict, fov: str) -> None:
    """Refuse a codebook whose rounds or channels differ from the primary tile set of ``fov``
    (``tilesets``: image type -> slicedimage TileSet, as parsed for the worker)."""
    primary = tilesets.get(PRIMARY)
    if primary is None:
        return
    shape = {str(getattr(k, "value", k)): int(v) for k, v in dict(primary.shape).items()}
    sizes = dict(codebook.sizes) if hasattr(codebook, "sizes") else {}
    wrong = [f"{sizes[axis]} {words} where the primary images of FOV {fov} have {shape[axis]}"
             for axis, words in _AXES if axis in sizes and axis in shape and sizes[axis] != shape[axis]]
    if wrong:
        raise ExperimentError(f"codebook {codebook_url} does not fit the images: it has {'; '.join(wrong)}")
