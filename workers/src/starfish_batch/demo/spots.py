"""Where the demo's spots are: random positions a little apart, and on overlapping FOVs, which
FOV owns each spot and which FOVs image it.

Positions are pixels in a FOV's round-0 frame; nothing here draws a pixel (``images.py`` does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np


class Spots(NamedTuple):
    """Spots of a FOV: pixel positions, targets and peak amplitudes (one entry per spot)."""

    xs: np.ndarray
    ys: np.ndarray
    targets: np.ndarray
    amplitudes: np.ndarray


def place_spots(rng: np.random.Generator, n: int, shape: tuple[int, int], margin: float,
                min_sep: float) -> np.ndarray:
    """``n`` positions (x, y) at least ``margin`` from the edges and ``min_sep`` apart."""
    height, width = shape
    placed = np.empty((0, 2), dtype=float)
    attempts = 0
    while len(placed) < n and attempts < 200 * max(n, 1):
        attempts += 1
        point = rng.uniform([margin, margin], [width - 1 - margin, height - 1 - margin])
        if not len(placed) or ((placed - point) ** 2).sum(axis=1).min() >= min_sep**2:
            placed = np.vstack([placed, point])
    if len(placed) < n:
        raise ValueError(f"could not place {n} spots {min_sep} px apart in a {shape} FOV")
    return placed


def draw_spots(rng: np.random.Generator, n: int, shape: tuple[int, int], margin: float, min_sep: float,
               target_names: Sequence[str], spot_amplitude: float) -> Spots:
    """A FOV's own ``n`` spots, anywhere ``margin`` from its edges (FOVs side by side)."""
    positions = place_spots(rng, n, shape, margin, min_sep=min_sep)
    targets = rng.choice(target_names, size=n) if n else np.array([], dtype=str)
    amplitudes = spot_amplitude * rng.uniform(0.6, 1.4, size=n)
    return Spots(positions[:, 0], positions[:, 1], targets, amplitudes)


def plan_overlapping_spots(rng: np.random.Generator, names: Sequence[str], columns: int,
                           shape: tuple[int, int], overlap: int, margin: float, min_sep: float,
                           n_spots: int, empty_fovs: Sequence[str], target_names: Sequence[str],
                           spot_amplitude: float) -> dict[int, Spots]:
    """Each FOV's own spots (local x, y; targets; amplitudes), inside the part of the grid it owns."""
    height, width = shape
    gap = 2.0
    planned = {}
    for index, name in enumerate(names):
        row, col = divmod(index, columns)
        left, right = col > 0, col + 1 < columns and index + 1 < len(names)
        up, down = row > 0, index + columns < len(names)
        lo_x = max(margin, (overlap - 1) / 2 + gap) if left else margin
        hi_x = min(width - 1 - margin, width - (overlap + 1) / 2 - gap) if right else width - 1 - margin
        lo_y = max(margin, (overlap - 1) / 2 + gap) if up else margin
        hi_y = min(height - 1 - margin, height - (overlap + 1) / 2 - gap) if down else height - 1 - margin
        n = 0 if name in empty_fovs else int(n_spots)
        box = (hi_y - lo_y + 1 + 2 * margin, hi_x - lo_x + 1 + 2 * margin)
        positions = place_spots(rng, n, box, margin, min_sep) + [lo_x - margin, lo_y - margin]
        targets = rng.choice(target_names, size=n) if n else np.array([], dtype=str)
        amplitudes = spot_amplitude * rng.uniform(0.6, 1.4, size=n)
        planned[index] = Spots(positions[:, 0], positions[:, 1], targets, amplitudes)
    return planned


def seen_by(planned: Mapping[int, Spots], index: int, columns: int, shape: tuple[int, int], overlap: int,
            reach: float) -> Spots:
    """Every planned spot that FOV ``index`` images (its own first), in its own pixels."""
    height, width = shape
    row, col = divmod(index, columns)
    xs, ys, targets, amps = [], [], [], []
    for other, spots in sorted(planned.items(), key=lambda kv: kv[0] != index):
        orow, ocol = divmod(other, columns)
        x = spots.xs + (ocol - col) * (width - overlap)
        y = spots.ys + (orow - row) * (height - overlap)
        seen = (x > -reach) & (x < width - 1 + reach) & (y > -reach) & (y < height - 1 + reach)
        xs.append(x[seen])
        ys.append(y[seen])
        targets.append(np.asarray(spots.targets)[seen])
        amps.append(spots.amplitudes[seen])
    return Spots(np.concatenate(xs), np.concatenate(ys), np.concatenate(targets).astype(str),
                 np.concatenate(amps))
