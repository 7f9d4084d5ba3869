"""The demo's ground truth: where every spot is, to score a run's decoded spots against.

``ground_truth.csv`` has one row per spot: ``fov, target, x, y, xc, yc`` with ``x``/``y`` the
pixel position in the FOV's round-0 (= dots) frame and ``xc``/``yc`` the physical position,
computed the way starfish does (``linspace(min, max, size)`` over each tile's physical range).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from starfish_batch.demo.spots import Spots

GROUND_TRUTH_NAME = "ground_truth.csv"
GROUND_TRUTH_COLUMNS = ("fov", "target", "x", "y", "xc", "yc")


def truth_rows(fov: str, spots: Spots, origin: tuple[float, float], pixel_size: float) -> list[dict]:
    """A FOV's own spots as ground-truth rows; ``origin`` is its tile's physical (x, y) minimum."""
    x_min, y_min = origin
    return [
        {
            "fov": fov,
            "target": str(target),
            "x": round(float(x), 3),
            "y": round(float(y), 3),
            "xc": round(x_min + float(x) * pixel_size, 4),
            "yc": round(y_min + float(y) * pixel_size, 4),
        }
        for x, y, target in zip(spots.xs, spots.ys, spots.targets, strict=True)
    ]


def write_ground_truth(out_dir: Path, rows: list[dict]) -> Path:
    """``out_dir/ground_truth.csv``, its columns in order even when no FOV has a spot."""
    path = out_dir / GROUND_TRUTH_NAME
    pd.DataFrame(rows, columns=list(GROUND_TRUTH_COLUMNS)).to_csv(path, index=False)
    return path
