"""The merge over overlapping FOVs: every transcript and every cell counted once (merge/overlap.py).

The FOV tables are cut from one whole-image table (``demo.tiling``): the real ISS table of
shared/data where this machine has it, and a synthetic one everywhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from starfish_batch.demo.testing import open_table, synthetic_decoded_table
from starfish_batch.demo.tiling import cut, duplicates, grid_extents, recall, write_tiled_run
from starfish_batch.merge import job as merge

REPO_ROOT = Path(__file__).resolve().parents[2]
ISS_CANDIDATES = [REPO_ROOT.parent / "shared" / "data" / "iss_fov_decoded.nc",
                  Path("/work/shared/data/iss_fov_decoded.nc")]


def whole_iss():
    """The real ISS table with stage coordinates of 1 unit a pixel (its own x/y)."""
    path = next((p for p in ISS_CANDIDATES if p.is_file()), None)
    if path is None:
        pytest.skip(f"the real ISS table is not on this machine ({ISS_CANDIDATES[0]})")
    table = open_table(str(path))
    return table.assign_coords(xc=("features", table.coords["x"].values.astype(float)),
                               yc=("features", table.coords["y"].values.astype(float)))


def whole_synthetic():
    return synthetic_decoded_table(3000, seed=7, shape=(600, 600), um_per_px=1.0)


def _spots(run_root: Path) -> pd.DataFrame:
    return pd.read_csv(run_root / "decoded_spots.csv.gz", dtype={"fov": str, "target": str},
                       keep_default_na=False, na_values=[""])


def _run(tmp_path, whole, overlap_rule=None, *, grid=(2, 2), tile=330, overlap=60, run_id="tiled",
         edge=3.0):
    ext = grid_extents(grid, tile=tile, overlap=overlap)
    tables = cut(whole, ext, edge=edge, seed=1)
    manifest = write_tiled_run(str(tmp_path / "results"), tables, ext, run_id=run_id, overlap=overlap_rule)
    result = merge.merge_run(manifest)
    return manifest, result, tables


@pytest.mark.parametrize("source", ["real", "synthetic"])
def test_nearest_counts_each_transcript_once(tmp_path, source):
    whole = whole_iss() if source == "real" else whole_synthetic()
    whole_df = pd.DataFrame({"target": whole.coords["target"].values.astype(str),
                             "passes_thresholds": whole.coords["passes_thresholds"].values,
                             "xc": whole.coords["xc"].values, "yc": whole.coords["yc"].values})
    # the real FOV is 1390 x 1044 px: 3 x 4 FOVs of 400 px overlapping by 40 px cover it
    grid, tile, overlap = ((3, 4), 400, 40) if source == "real" else ((2, 2), 330, 60)
    manifest, result, tables = _run(tmp_path, whole, grid=grid, tile=tile, overlap=overlap)
    root = Path(manifest.run_root)
    got = _spots(root)
    n_dup = duplicates(got)
    assert n_dup <= 0.01 * len(got), f"{n_dup} duplicates in {len(got)}"
    assert recall(whole_df, got) >= 0.95
    summary = json.loads((root / "summary.json").read_text())
    cut_total = sum(int(t.sizes["features"]) for t in tables.values())
    dropped = summary["overlap"]["transcripts_dropped"]
    assert dropped > 0 and summary["n_features"] == cut_total - dropped == len(got)
    assert sum(e.get("dropped", 0) for e in summary["fovs"].values()) == dropped
    assert summary["overlap"]["rule"] == "nearest"
    share = round(100 * overlap / tile)
    assert summary["overlap"]["closing_line"] == (f"FOVs overlap by up to {overlap} px ({share} %): {dropped} "
                                                  "transcripts in overlaps counted once, by the nearest FOV")
    mid = tile - overlap / 2
    assert summary["fovs"]["fov_0000"]["owned"] == [[0, 0], [mid, 0], [mid, mid], [0, mid]]
    # the same rows in every output
    table = open_table(str(root / "merged_decoded_fovs.nc"))
    assert int(table.sizes["features"]) == len(got)
    parquet = pd.read_parquet(root / "transcripts.parquet")
    assert len(parquet) == len(got)
    np.testing.assert_allclose(np.sort(parquet["xc"].to_numpy()), np.sort(table.coords["xc"].values))
    # the per-FOV outputs are as the recipe wrote them
    for fov, t in tables.items():
        assert int(open_table(manifest.fov_url(fov)).sizes["features"]) == int(t.sizes["features"])


def test_keep_all_is_todays_merge_and_counts_duplicates(tmp_path):
    whole = whole_synthetic()
    manifest, result, tables = _run(tmp_path, whole, "keep-all")
    got = _spots(Path(manifest.run_root))
    assert result.n_features == sum(int(t.sizes["features"]) for t in tables.values())
    assert duplicates(got) > 0.05 * len(got)  # what nearest removes
    summary = json.loads((Path(manifest.run_root) / "summary.json").read_text())
    assert summary["overlap"]["rule"] == "keep-all" and summary["overlap"]["transcripts_dropped"] == 0


def test_take_max_gives_each_overlap_to_one_fov(tmp_path):
    whole = whole_synthetic()
    manifest, result, tables = _run(tmp_path, whole, "take-max")
    got = _spots(Path(manifest.run_root))
    assert duplicates(got) <= 0.01 * len(got)
    strip = (got["xc"] >= 270) & (got["xc"] <= 330) & (got["yc"] < 270)  # fov_0000 | fov_0001
    assert got.loc[strip, "fov"].nunique() == 1
    summary = json.loads((Path(manifest.run_root) / "summary.json").read_text())
    assert summary["overlap"]["rule"] == "take-max" and summary["overlap"]["transcripts_dropped"] > 0


def test_merge_can_be_redone_under_another_rule(tmp_path, capsys):
    manifest, first, _ = _run(tmp_path, whole_synthetic())
    url = str(Path(manifest.run_root) / "manifest.json")
    assert merge.main(["--manifest-url", url, "--overlap", "keep-all"]) == 0
    again = json.loads((Path(manifest.run_root) / "summary.json").read_text())
    assert again["n_features"] > first.n_features
    assert "every FOV's transcripts kept (--overlap keep-all)" in capsys.readouterr().err


def test_fovs_that_do_not_overlap_merge_exactly_as_before(tmp_path):
    whole = whole_synthetic()
    ext = grid_extents((2, 2), tile=300, overlap=0)
    tables = cut(whole, ext, seed=1)
    with_layout = write_tiled_run(str(tmp_path / "a"), tables, ext, run_id="a")
    without = write_tiled_run(str(tmp_path / "b"), tables, ext, run_id="b", layout=False)
    merge.merge_run(with_layout)
    merge.merge_run(without)
    a, b = Path(with_layout.run_root), Path(without.run_root)
    for name in ("decoded_spots.csv.gz", "transcripts.parquet"):
        if name.endswith(".gz"):
            assert _spots(a).equals(_spots(b))
        else:
            assert pd.read_parquet(a / name).equals(pd.read_parquet(b / name))
    ta, tb = open_table(str(a / "merged_decoded_fovs.nc")), open_table(str(b / "merged_decoded_fovs.nc"))
    assert ta.equals(tb)
    summary = json.loads((a / "summary.json").read_text())
    assert summary["overlap"]["transcripts_dropped"] == 0 and not summary["overlap"]["say"]


def test_a_missing_fov_owns_nothing_its_neighbours_keep_the_overlap(tmp_path):
    whole = whole_synthetic()
    ext = grid_extents((1, 2), tile=330, overlap=60)
    tables = cut(whole, ext, seed=1)
    manifest = write_tiled_run(str(tmp_path / "r"), tables, ext)
    Path(manifest.fov_url("fov_0001")).unlink()
    result = merge.merge_run(manifest, allow_partial=True)
    assert result.n_features == int(tables["fov_0000"].sizes["features"])


def _with_square_cells(table, size: float = 20.0):
    """Cells as ``size`` px squares of the whole image; a third of the features in none."""
    x, y = table.coords["xc"].values, table.coords["yc"].values
    label = (np.floor(x / size).astype(int) * 1000 + np.floor(y / size).astype(int)).astype(str)
    rng = np.random.default_rng(3)
    ids = np.where(rng.random(len(x)) < 0.3, "nan", label).astype("<U8")
    return table.assign_coords(cell_id=("features", ids))


def test_cells_are_kept_whole_by_the_fov_that_owns_their_centroid(tmp_path):
    import anndata  # lazy: anndata ~4 s

    whole = _with_square_cells(whole_synthetic())
    manifest, result, tables = _run(tmp_path, whole, edge=0.0)
    root = Path(manifest.run_root)
    cells = anndata.read_h5ad(root / "cells.h5ad")
    labels = cells.obs["label"].astype(str)  # the recipe's own id (cell_id is "<fov>:<label>")
    # a cell (a 20 px square) that lies wholly inside two FOVs is kept by exactly one
    sq_x = np.array([int(v) // 1000 for v in labels]) * 20
    sq_y = np.array([int(v) % 1000 for v in labels]) * 20
    ext = grid_extents((2, 2), tile=330, overlap=60)

    def inside(fov):
        x0, x1, y0, y1 = ext[fov]
        return (sq_x >= x0) & (sq_x + 20 <= x1) & (sq_y >= y0) & (sq_y + 20 <= y1)

    both = inside("fov_0000") & inside("fov_0001")
    assert both.any()
    kept = pd.Series(labels[both]).value_counts()
    assert (kept == 1).all()
    # every feature of a kept cell is kept with it, also those past its FOV's midline
    got = pd.read_parquet(root / "transcripts.parquet")
    in_cells = got[got["cell_id"].notna() & (got["cell_id"].astype(str) != "")]
    assert (in_cells.groupby("cell_id", observed=True)["fov"].nunique() == 1).all()
    summary = json.loads((root / "summary.json").read_text())
    assert summary["overlap"]["cells_dropped"] > 0
    assert summary["overlap"]["cells_touching_fov_edge"] > 0
    assert len(set(cells.obs_names)) == cells.n_obs


def test_fovs_at_one_place_are_all_kept_and_said(tmp_path, capsys):
    """Synthetic data often puts every FOV at the same stage position: nothing is dropped, and
    the merge says which rule it applied and why."""
    whole = whole_synthetic()
    ext = grid_extents((1, 2), tile=330, overlap=60)
    tables = cut(whole, ext, seed=1)
    same = {fov: [0.0, 330.0, 0.0, 330.0] for fov in tables}
    manifest = write_tiled_run(str(tmp_path / "r"), tables, same)
    url = str(Path(manifest.run_root) / "manifest.json")
    assert merge.main(["--manifest-url", url]) == 0
    summary = json.loads((Path(manifest.run_root) / "summary.json").read_text())
    assert summary["n_features"] == sum(int(t.sizes["features"]) for t in tables.values())
    assert summary["overlap"]["say"] and summary["overlap"]["transcripts_dropped"] == 0
    assert ("overlaps: all 2 FOVs are at the same stage position (no usable coordinates): every "
            "transcript kept (keep-all)") in capsys.readouterr().err


def test_a_fov_table_without_stage_coordinates_is_kept_whole_and_named(tmp_path, capsys):
    whole = whole_synthetic()
    ext = grid_extents((1, 2), tile=330, overlap=60)
    tables = cut(whole, ext, seed=1)
    tables["fov_0001"] = tables["fov_0001"].drop_vars(["xc", "yc"])
    manifest = write_tiled_run(str(tmp_path / "r"), tables, ext)
    assert merge.main(["--manifest-url", str(Path(manifest.run_root) / "manifest.json")]) == 0
    summary = json.loads((Path(manifest.run_root) / "summary.json").read_text())
    assert summary["overlap"]["fovs_without_xc_yc"] == ["fov_0001"]
    assert summary["fovs"]["fov_0001"]["features"] == int(tables["fov_0001"].sizes["features"])
    assert "1 FOV tables without xc/yc kept whole" in capsys.readouterr().err
