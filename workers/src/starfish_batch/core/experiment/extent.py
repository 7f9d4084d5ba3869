"""Where a FOV lies on the slide: the bounds of its tiles' stage coordinates (``xc``, ``yc``).

Read from the FOV's tile-set documents, which a worker has already fetched to open its FOV, so
recording it in ``fovs/<fov>.json`` costs nothing; the report draws its map from it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from starfish_batch.core.experiment.documents import PRIMARY, Document


def _bounds(value) -> tuple[float, float] | None:
    """A coordinate as SpaceTx writes it: ``[lo, hi]`` or one number."""
    try:
        lo, hi = (value, value) if isinstance(value, int | float) else (value[0], value[-1])
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError, IndexError, KeyError):
        return None
    return (min(lo, hi), max(lo, hi)) if math.isfinite(lo) and math.isfinite(hi) else None


def stage_extent(documents: Mapping[str, Document]) -> dict[str, list[float]] | None:
    """``{"xc": [min, max], "yc": [min, max]}`` over the tiles of the primary images (else of
    every image type), or None when no tile gives both coordinates."""
    chosen = [documents[PRIMARY]] if PRIMARY in documents else list(documents.values())
    xs: list[float] = []
    ys: list[float] = []
    for doc in chosen:
        for tile in doc.doc.get("tiles") or ():
            coords = tile.get("coordinates") if isinstance(tile, dict) else None
            if not isinstance(coords, dict):
                continue
            x, y = _bounds(coords.get("xc")), _bounds(coords.get("yc"))
            if x and y:
                xs += x
                ys += y
    if not xs:
        return None
    return {"xc": [min(xs), max(xs)], "yc": [min(ys), max(ys)]}


def pixel_size(documents: Mapping[str, Document]) -> float | None:
    """Stage units per pixel of the primary tiles (their extent over ``tile_shape``), or None."""
    doc = documents.get(PRIMARY) or next(iter(documents.values()), None)
    for tile in (doc.doc.get("tiles") or ()) if doc is not None else ():
        coords = tile.get("coordinates") if isinstance(tile, dict) else None
        shape = tile.get("tile_shape") or doc.doc.get("default_tile_shape")
        if not isinstance(coords, dict) or not isinstance(shape, dict):
            continue
        x = _bounds(coords.get("xc"))
        try:
            width = float(shape.get("x"))
        except (TypeError, ValueError):
            continue
        if x and width > 0 and x[1] > x[0]:
            return (x[1] - x[0]) / width
    return None
