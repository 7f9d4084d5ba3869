"""A whole-image table cut into overlapping FOVs, as a microscope's tiler would image it.

For the overlap tests and ``make bench``: each FOV gets the features of the whole image that
fall inside its extent (less those within ``edge`` px of its border, which a spot finder
misses there), with its own small position jitter (the same molecule is never found at the
very same place twice), pixel ``x``/``y`` local to the FOV and stage ``xc``/``yc`` global.
``write_tiled_run`` writes them as a run whose process-fov step is done, with the run's
``fov_layout.json``; ``duplicates`` and ``recall`` score a merged table against the whole.
"""

from __future__ import annotations

import numpy as np
from starfish_batch.core import storage
from starfish_batch.core.contract import LAYOUT_NAME
from starfish_batch.demo.testing import write_fov_table
from starfish_batch.core.layout import FovLayout
from starfish_batch.core.manifest import Manifest, sha256_hex
from starfish_batch.core.records import FovRecord


def grid_extents(grid: tuple[int, int], tile: int, overlap: int, um_per_px: float = 1.0,
                 origin: tuple[float, float] = (0.0, 0.0)) -> dict[str, list[float]]:
    """``{fov_RRCC: [x0, x1, y0, y1]}`` (stage units) of a rows x cols grid of ``tile`` px FOVs
    overlapping by ``overlap`` px."""
    rows, cols = grid
    step = tile - overlap
    out = {}
    for r in range(rows):
        for c in range(cols):
            x0 = origin[0] + c * step * um_per_px
            y0 = origin[1] + r * step * um_per_px
            out[f"fov_{r:02d}{c:02d}"] = [x0, x0 + tile * um_per_px, y0, y0 + tile * um_per_px]
    return out


def cut(table, extents: dict[str, list[float]], um_per_px: float = 1.0, edge: float = 0.0,
        jitter: float = 0.3, seed: int = 0) -> dict:
    """``{fov: table}``: the features of ``table`` (a whole image: ``xc``/``yc`` in stage
    units) that each FOV images, as its recipe would report them."""
    rng = np.random.default_rng(seed)
    xc = table.coords["xc"].values.astype(np.float64)
    yc = table.coords["yc"].values.astype(np.float64)
    out = {}
    for fov, (x0, x1, y0, y1) in extents.items():
        m = edge * um_per_px
        inside = (xc >= x0 + m) & (xc < x1 - m) & (yc >= y0 + m) & (yc < y1 - m)
        piece = table.isel(features=np.flatnonzero(inside))
        n = int(piece.sizes["features"])
        dx = rng.uniform(-jitter, jitter, n) * um_per_px
        dy = rng.uniform(-jitter, jitter, n) * um_per_px
        px, py = xc[inside] + dx, yc[inside] + dy
        piece = piece.assign_coords(
            xc=("features", px), yc=("features", py),
            x=("features", np.rint((px - x0) / um_per_px).astype(piece.coords["x"].dtype)),
            y=("features", np.rint((py - y0) / um_per_px).astype(piece.coords["y"].dtype)),
        )
        out[fov] = piece
    return out


def write_tiled_run(results_url: str, tables: dict, extents: dict[str, list[float]],
                    um_per_px: float = 1.0, run_id: str = "tiled", overlap: str | None = None,
                    layout: bool = True):
    """A run over ``tables`` (``{fov: table}``) with its FOV layout, ready to merge."""
    fovs = list(tables)
    manifest = Manifest(run_id=run_id, experiment_url="/nowhere/experiment.json",
                        recipe_url="/nowhere/recipe.py", recipe_sha256="0" * 64,
                        results_url=storage.absolute(results_url), fovs=fovs, overlap=overlap)
    if layout:
        data = FovLayout.build(fovs, extents, um_per_px).to_json().encode()
        manifest.layout_sha256 = sha256_hex(data)
        storage.write_bytes(storage.join(manifest.run_root, LAYOUT_NAME), data)
    for i, fov in enumerate(fovs):
        table = tables[fov]
        with storage.staged_output(manifest.fov_url(fov, ".nc"), ".nc") as tmp:
            write_fov_table(table, tmp, fov)
            digest = storage.Digest.of_file(tmp)
        ext = extents.get(fov)
        record = FovRecord(fov=fov, index=i, run_id=run_id, recipe_sha256=manifest.recipe_sha256,
                           n_features=int(table.sizes["features"]), seconds=1.0,
                           peak_memory_bytes=10_000_000, nc_bytes=digest.size, nc_sha256=digest.sha256,
                           extent=None if ext is None else {"xc": ext[:2], "yc": ext[2:]})
        storage.write_text(manifest.fov_url(fov, ".json"), record.to_json())
    manifest.save()
    return manifest


def _decoded(df):
    ok = df["passes_thresholds"].astype(str).str.lower().isin(["true", "1", "1.0"]) \
        if "passes_thresholds" in df else np.ones(len(df), bool)
    tgt = df["target"].astype(str)
    return df[ok & ~tgt.str.strip().str.lower().isin(["", "nan", "none", "null"])]


def duplicates(df, within_px: float = 2.0, um_per_px: float = 1.0) -> int:
    """Merged transcripts that are the same molecule twice: another transcript of the same
    target, from another FOV, within ``within_px`` (stage coordinates)."""
    from scipy.spatial import cKDTree  # lazy: scipy ~0.6-1.4 s

    df = _decoded(df)
    found = 0
    for _target, group in df.groupby("target"):
        if len(group) < 2:
            continue
        xy = group[["xc", "yc"]].to_numpy(np.float64)
        fov = group["fov"].astype(str).to_numpy()
        pairs = cKDTree(xy).query_pairs(within_px * um_per_px, output_type="ndarray")
        if len(pairs):
            found += int(np.count_nonzero(fov[pairs[:, 0]] != fov[pairs[:, 1]]))
    return found


def recall(whole, merged, within_px: float = 2.0, um_per_px: float = 1.0) -> float:
    """Share of the whole image's decoded transcripts with a merged one of the same target
    within ``within_px``."""
    from scipy.spatial import cKDTree  # lazy: scipy ~0.6-1.4 s

    whole, merged = _decoded(whole), _decoded(merged)
    if not len(whole):
        return 1.0
    hit = 0
    for target, group in whole.groupby("target"):
        other = merged[merged["target"] == target]
        if not len(other):
            continue
        d, _ = cKDTree(other[["xc", "yc"]].to_numpy(np.float64)).query(
            group[["xc", "yc"]].to_numpy(np.float64), distance_upper_bound=within_px * um_per_px)
        hit += int(np.count_nonzero(np.isfinite(d)))
    return hit / len(whole)
