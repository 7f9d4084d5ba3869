"""A small synthetic ISS-like experiment in SpaceTx format, with its ground truth.

``write_demo_experiment(out_dir)`` writes ``experiment.json`` (plus its images and a real
codebook) and ``ground_truth.csv`` beside it. Each field of view has

- a ``primary`` image: ``n_rounds`` rounds x ``n_channels`` channels x 1 z-plane, uint16;
  every spot (a rolling-circle amplicon) lights exactly one channel per round, the one its
  target's codeword names (the one-hot-per-round codes that ``PerRoundMaxChannel`` decodes);
  each round is translated by a known shift of a few pixels (round 0 is not shifted);
- a ``dots`` auxiliary image (1 round, 1 channel): every amplicon, in the round-0 frame,
  as an "anchor" stain; the ISS recipe registers the rounds to it and detects spots on it;
- a ``nuclei`` auxiliary image (1 round, 1 channel): a few round DAPI-like nuclei (their
  own random positions, drawn from a second generator so the spots and the ground truth do
  not depend on them), for recipes that segment cells (``examples/iss_cells_recipe.py``);
- a smooth uneven background, a little channel bleed-through and Poisson-like noise.

``ground_truth.csv`` has one row per spot (see ``ground_truth.py``). FOVs lie on a grid,
side by side or overlapping by ``overlap`` pixels.

This module lays the FOVs out and draws the random numbers in a fixed order; the spots'
positions are ``spots.py``, the pixels ``images.py``, the codebook ``codebook.py``, the SpaceTx
documents ``spacetx.py`` and the ground truth ``ground_truth.py``.
"""


from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from starfish_batch.demo.codebook import DEFAULT_TARGETS, channels_per_round, make_codebook_array
from starfish_batch.demo.ground_truth import (
    GROUND_TRUTH_COLUMNS,
    GROUND_TRUTH_NAME,
    truth_rows,
    write_ground_truth,
)
from starfish_batch.demo.images import FovImages, Look, render_fov
from starfish_batch.demo.spacetx import remove_earlier_demo, tile_coordinates, write_spacetx
from starfish_batch.demo.spots import draw_spots, plan_overlapping_spots, seen_by

__all__ = [
    "DEFAULT_FOV_NAMES", "DEFAULT_TARGETS", "GROUND_TRUTH_COLUMNS", "GROUND_TRUTH_NAME",
    "default_fov_names", "make_codebook_array", "widen_experiment", "write_demo_experiment",
]

DEFAULT_FOV_NAMES = ("A1", "A2", "B1", "B2")  # default_fov_names(4)


def default_fov_names(n_fovs: int) -> list[str]:
    """Well-plate-like names on a square-ish grid: A1, A2, B1, B2 for 4; ..., AA1 past Z."""
    columns = int(np.ceil(np.sqrt(n_fovs)))
    names = []
    for i in range(n_fovs):
        row, col = divmod(i, columns)
        letters = ""
        row += 1
        while row:
            row, rest = divmod(row - 1, 26)
            letters = chr(ord("A") + rest) + letters
        names.append(f"{letters}{col + 1}")
    return names


def _checked_fov_names(fov_names: Sequence[str] | None, n_fovs: int, empty_fovs: Sequence[str]) -> list[str]:
    """The FOV names as text, refused when none, repeated, or ``empty_fovs`` names another."""
    if fov_names is None:
        fov_names = default_fov_names(n_fovs)
    fov_names = [str(name) for name in fov_names]
    if not fov_names:
        raise ValueError("at least one FOV is needed")
    if len(set(fov_names)) != len(fov_names):
        raise ValueError(f"FOV names must be unique: {fov_names}")
    unknown = set(empty_fovs) - set(fov_names)
    if unknown:
        raise ValueError(f"empty_fovs names FOVs that do not exist: {sorted(unknown)}")
    return fov_names


def write_demo_experiment(
    out_dir,
    *,
    fov_names: Sequence[str] | None = None,
    n_fovs: int = 4,
    shape: tuple[int, int] = (256, 256),
    n_spots: int = 60,
    empty_fovs: Sequence[str] = (),
    seed: int = 0,
    targets: Sequence[str] = DEFAULT_TARGETS,
    n_rounds: int = 4,
    n_channels: int = 4,
    max_shift: float = 4.0,
    spot_sigma: float = 1.5,
    spot_amplitude: float = 0.2,
    background: float = 0.05,
    noise: float = 0.002,
    bleed_through: float = 0.05,
    pixel_size: float = 0.5,
    nuclei_per_fov: int = 6,
    overlap: int = 0,
) -> Path:
    """Write a synthetic ISS-like SpaceTx experiment and its ground truth into ``out_dir``.

    Parameters
    ----------
    out_dir : directory to create (or reuse); the experiment is ``out_dir/experiment.json``.
    fov_names : free-form FOV names (unique); default the first ``n_fovs`` of
        ``A1, A2, B1, B2, ...`` (a row letter and a column number on a square-ish grid).
    n_fovs : number of FOVs when ``fov_names`` is not given.
    shape : (height, width) of every tile, in pixels.
    n_spots : spots per FOV (FOVs named in ``empty_fovs`` get none at all).
    empty_fovs : names of FOVs with no spot (background and noise only).
    seed : everything random (codebook, positions, targets, shifts, noise) derives from it.
    max_shift : per-round translations are drawn in [-max_shift, max_shift] pixels (round 0: 0).
    spot_sigma, spot_amplitude : Gaussian spot width (px) and median peak (in [0, 1] units,
        the amplitudes vary +-40 % spot to spot).
    background, noise, bleed_through : background level, noise sd and the fraction of a spot's
        signal that leaks into the neighbouring channels.
    pixel_size : physical size of a pixel (the unit of ``xc``/``yc``, e.g. micrometres).
    nuclei_per_fov : nuclei drawn in each FOV's ``nuclei`` image.
    overlap : pixels each FOV shares with its grid neighbours (0: FOVs side by side). Each
        spot is placed in the part of the grid its FOV owns (nearer its centre than any other
        FOV's, at least 2 px from that part's border) and drawn in every FOV that images it:
        the ground truth lists it once, under the FOV that owns it.

    Returns the path of ``experiment.json``.
    """
    fov_names = _checked_fov_names(fov_names, n_fovs, empty_fovs)
    look = Look((int(shape[0]), int(shape[1])), n_rounds, n_channels, max_shift, spot_sigma, spot_amplitude,
                background, noise, bleed_through, nuclei_per_fov)
    height, width = look.shape
    if min(height, width) <= 2 * look.margin + 1:
        raise ValueError(f"shape {shape} is too small for spots {look.margin:.0f} px from the edges")

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    code_array = make_codebook_array(list(targets), n_rounds, n_channels, seed=seed)
    overlap = int(overlap)
    if not 0 <= overlap < min(height, width) / 2:
        raise ValueError(f"overlap {overlap} px: use 0 to less than half of {shape}")
    images, coords, rows = _draw_fovs(fov_names, look, code_array, seed=seed, overlap=overlap, n_spots=n_spots,
                                      empty_fovs=empty_fovs, pixel_size=pixel_size)
    remove_earlier_demo(out_dir)
    experiment_json = write_spacetx(out_dir, fov_names, images, coords, code_array, n_rounds, n_channels,
                                    look.shape)
    write_ground_truth(out_dir, rows)
    return experiment_json


def _draw_fovs(fov_names: list[str], look: Look, code_array: list[dict], *, seed: int, overlap: int,
               n_spots: int, empty_fovs: Sequence[str],
               pixel_size: float) -> tuple[list[FovImages], list[dict], list[dict]]:
    """Every FOV's images, tile coordinates and ground-truth rows, in ``fov_names`` order.

    The random numbers are drawn in a fixed order (each FOV's spots, then its images; the nuclei
    and the overlapping spots from generators of their own) so that a seed gives the same demo.
    """
    height, width = look.shape
    rng = np.random.default_rng(seed)
    codes = channels_per_round(code_array)
    target_names = [entry["target"] for entry in code_array]
    # FOVs on a grid, in the order given: row-major, square-ish (overlapping by ``overlap`` px).
    columns = int(np.ceil(np.sqrt(len(fov_names))))
    planned = None
    if overlap:
        planned = plan_overlapping_spots(np.random.default_rng([seed, 2]), fov_names, columns, look.shape,
                                         overlap, look.margin, look.min_sep, n_spots, empty_fovs,
                                         target_names, look.spot_amplitude)
    nuclei_rng = np.random.default_rng([seed, 1])
    images: list[FovImages] = []
    coords: list[dict] = []
    rows: list[dict] = []
    for index, name in enumerate(fov_names):
        row, col = divmod(index, columns)
        origin = (col * (width - overlap) * pixel_size, row * (height - overlap) * pixel_size)
        coords.append(tile_coordinates(origin, look.shape, pixel_size))
        if planned is None:
            n = 0 if name in empty_fovs else int(n_spots)
            own = draw_spots(rng, n, look.shape, look.margin, look.min_sep, target_names, look.spot_amplitude)
            seen = own
        else:  # this FOV also images its neighbours' spots in the overlaps
            own = planned[index]
            seen = seen_by(planned, index, columns, look.shape, overlap, look.reach)
        rows.extend(truth_rows(name, own, origin, pixel_size))
        images.append(render_fov(rng, nuclei_rng, look, seen, codes))
    return images, coords, rows


def widen_experiment(experiment_json, n_fovs: int, name: str | None = None) -> Path:
    """An experiment of ``n_fovs`` FOVs beside ``experiment_json``, reusing its tile sets.

    FOV ``fov_00000``, ``fov_00001``, ... points at the original FOVs' tile-set documents in
    turn, so experiments of any size hold the same images: what changes with ``n_fovs`` is
    only the size of the collection documents (for benchmarks and tests of what a worker reads).
    Writes ``<name>.json`` and one ``<name>-<image type>.json`` per image type; returns the first.
    """
    experiment_json = Path(experiment_json)
    name = name or f"experiment-{n_fovs}"
    doc = json.loads(experiment_json.read_text())
    for image_type, ref in doc["images"].items():
        collection = json.loads((experiment_json.parent / ref).read_text())
        originals = [collection["contents"][key] for key in sorted(collection["contents"])]
        collection["contents"] = {f"fov_{i:05d}": originals[i % len(originals)] for i in range(n_fovs)}
        widened = f"{name}-{image_type}.json"
        (experiment_json.parent / widened).write_text(json.dumps(collection, indent=1))
        doc["images"][image_type] = widened
    out = experiment_json.parent / f"{name}.json"
    out.write_text(json.dumps(doc, indent=4))
    return out
