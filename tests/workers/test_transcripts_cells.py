"""transcripts.parquet and cells.h5ad, written by the merge beside the merged table: the same
rows and values as the merged netCDF, and cell-by-target counts equal to a groupby of it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from starfish_batch.core import storage
from starfish_batch.demo.testing import open_table, synthetic_decoded_table, with_cells, write_fake_run
from starfish_batch.merge import job as merge
from starfish_batch.merge import parquet, reader
from starfish_batch.merge.cells import CellCounter

FOVS = {"A1": 37, "x-ray_2": 0, "fov 3": 120, "Z-last": 5}
PHYSICAL = {"xc": "xc", "yc": "yc", "zc": "zc"}
PIXEL = {"x": "x", "y": "y", "z": "z"}


def _table(n: int, seed: int):
    return synthetic_decoded_table(n, seed=seed, shape=(60, 80), origin_um=(seed * 10.0, 0.0))


def _parquet(result) -> pd.DataFrame:
    with storage.local_copy(result.outputs["transcripts"]) as path:
        return pd.read_parquet(path)


def assert_parquet_equals_merged(df: pd.DataFrame, merged) -> None:
    n = merged.sizes["features"]
    assert len(df) == n
    for col, coord in {**PHYSICAL, **PIXEL, "spot_id": "spot_id", "distance": "distance",
                       "radius": "radius", "intensity": "intensity"}.items():
        if coord not in merged.coords:
            assert col not in df.columns
            continue
        want = merged[coord].values
        assert df[col].dtype == want.dtype, col
        np.testing.assert_array_equal(df[col].to_numpy(), want, err_msg=col)
    for col in ("fov", "target"):
        assert df[col].astype(str).tolist() == merged[col].values.astype(str).tolist(), col
    passes = merged["passes_thresholds"].values
    if passes.dtype == bool:
        assert df["passes_thresholds"].dtype == bool
    np.testing.assert_array_equal(df["passes_thresholds"].to_numpy(passes.dtype), passes)
    peak = merged.max(dim=("r", "c")).values if n else np.zeros(0)
    np.testing.assert_array_equal(df["max_intensity"].to_numpy(), peak)


def test_parquet_rows_equal_the_merged_table(tmp_path):
    manifest = write_fake_run(str(tmp_path / "results"), FOVS)
    result = merge.merge_run(manifest)
    merged = open_table(result.merged_url)
    df = _parquet(result)
    assert [c for c, _ in parquet.COLUMNS if c in df.columns] == list(df.columns)
    assert "cell_id" not in df.columns
    assert_parquet_equals_merged(df, merged)
    assert isinstance(df["target"].dtype, pd.CategoricalDtype)
    # read with pyarrow too: one row group per block of the merge, here one
    with storage.local_copy(result.outputs["transcripts"]) as path:
        meta = pq.ParquetFile(path).metadata
    assert meta.num_rows == sum(FOVS.values()) and meta.num_row_groups == 1


def test_parquet_with_differing_optional_coordinates_and_many_blocks(tmp_path, monkeypatch):
    """A FOV without ``radius`` (as pixel decoding gives) and one without ``intensity``: the
    merged table fills them with NaN, and so does the Parquet file; blocks of 16 rows make
    row groups of the same."""
    monkeypatch.setattr(reader, "BLOCK_FEATURES", 16)
    tables = {"A1": _table(37, 1).drop_vars("radius"), "B": _table(0, 2),
              "C": _table(50, 3).drop_vars("intensity"), "D": _table(20, 4)}
    manifest = write_fake_run(str(tmp_path / "results"), {f: 0 for f in tables}, tables=tables)
    result = merge.merge_run(manifest)
    merged = open_table(result.merged_url)
    df = _parquet(result)
    assert np.isnan(df["radius"].to_numpy()[:37]).all() and not np.isnan(df["radius"].to_numpy()[37:]).any()
    assert_parquet_equals_merged(df, merged)
    with storage.local_copy(result.outputs["transcripts"]) as path:
        assert pq.ParquetFile(path).metadata.num_row_groups == -(-107 // 16)


def test_parquet_of_a_run_without_features(tmp_path):
    manifest = write_fake_run(str(tmp_path / "results"), {"A": 0, "B": 0})
    result = merge.merge_run(manifest)
    df = _parquet(result)
    assert len(df) == 0
    assert {"x", "y", "target", "fov", "passes_thresholds"} <= set(df.columns)


def _cell_run(tmp_path, cells_in: dict[str, int]):
    """FOVs whose tables carry cell_id (``n_cells`` > 0) or not (0), all with features."""
    tables = {}
    for i, (fov, n_cells) in enumerate(cells_in.items()):
        table = _table(60 + 10 * i, seed=i + 1)
        tables[fov] = with_cells(table, n_cells, seed=i) if n_cells else table
    manifest = write_fake_run(str(tmp_path / "results"), {f: 0 for f in tables}, tables=tables)
    return manifest, merge.merge_run(manifest)


def _assert_cells_equal_groupby(result):
    """cells.h5ad against the merged table: returns (AnnData, the features in cells)."""
    import anndata as ad  # lazy: anndata ~4 s

    merged = open_table(result.merged_url)
    with storage.local_copy(result.outputs["cells"]) as path:
        adata = ad.read_h5ad(path)

    frame = pd.DataFrame({name: merged[name].values for name in
                          ("fov", "target", "cell_id", "passes_thresholds", "xc", "yc")})
    in_cell = ~frame["cell_id"].isin(["nan", ""])
    frame = frame[in_cell].assign(cell=lambda f: f["fov"] + ":" + f["cell_id"])
    decoded = frame[frame["passes_thresholds"] & (frame["target"] != "nan")]
    want = decoded.groupby(["cell", "target"]).size().unstack(fill_value=0)

    assert adata.obs_names.is_unique
    assert set(adata.obs_names) == set(frame["cell"])  # cells with features, spots or not
    got = adata.to_df().reindex(index=want.index, columns=want.columns)
    np.testing.assert_array_equal(got.to_numpy(), want.to_numpy())
    assert adata.X.sum() == len(decoded)  # and nothing elsewhere
    assert adata.obs["n_spots"].sum() == len(decoded)
    assert (adata.obs["n_features"] == frame.groupby("cell").size().reindex(adata.obs_names)).all()
    centroid = frame.groupby("cell")[["xc", "yc"]].mean().reindex(adata.obs_names)
    np.testing.assert_allclose(adata.obsm["spatial"], centroid.to_numpy())
    return adata, frame, in_cell


def test_cells_h5ad_counts_equal_a_groupby_of_decoded_spots(tmp_path):
    # the same local cell ids ("1", "2", ...) in A1 and fov 3; B2 assigns no cells
    manifest, result = _cell_run(tmp_path, {"A1": 4, "B2": 0, "fov 3": 5})
    adata, frame, in_cell = _assert_cells_equal_groupby(result)
    assert adata.obs.loc["A1:1", "fov"] == "A1" and adata.obs.loc["fov 3:1", "fov"] == "fov 3"
    assert not adata.obs["fov"].eq("B2").any()

    # transcripts.parquet names the same cells, null outside them
    df = _parquet(result)
    cell = df["cell_id"].astype(object)
    assert cell[in_cell.to_numpy()].tolist() == frame["cell"].tolist()
    assert cell[~in_cell.to_numpy()].isna().all()
    summary = json.loads(storage.read_text(result.outputs["summary"]))
    assert summary["outputs"]["cells"] == "cells.h5ad"  # relative to the run folder


def test_no_cells_h5ad_and_the_summary_says_why(tmp_path):
    manifest, result = _cell_run(tmp_path, {"A1": 0, "B2": 0})
    assert "cells" not in result.outputs
    assert not storage.exists(storage.join(manifest.run_root, "cells.h5ad"))
    summary = json.loads(storage.read_text(storage.join(manifest.run_root, "summary.json")))
    assert "cells" not in summary["outputs"]
    assert any("no FOV's table has a cell_id" in note for note in summary["notes"])


def test_cell_id_everywhere_nan_writes_no_cells(tmp_path):
    table = _table(40, 1)
    table = table.assign_coords(cell_id=("features", np.full(40, "nan", dtype="<U8")))
    manifest = write_fake_run(str(tmp_path / "results"), {"A1": 0}, tables={"A1": table})
    result = merge.merge_run(manifest)
    assert "cells" not in result.outputs
    summary = json.loads(storage.read_text(result.outputs["summary"]))
    assert any("no feature of any FOV is in a cell" in note for note in summary["notes"])


@pytest.mark.parametrize("block", [16, 50])
def test_cells_split_over_blocks(tmp_path, monkeypatch, block):
    """Small blocks: a FOV, and its cells, go on over several blocks (its counts stay open
    until it ends) or a block holds several FOVs; each cell is one cell, counted once a spot."""
    monkeypatch.setattr(reader, "BLOCK_FEATURES", block)
    manifest, result = _cell_run(tmp_path, {"A": 3, "B": 0, "C": 3, "D": 2})
    adata, frame, _ = _assert_cells_equal_groupby(result)
    assert adata.n_obs == 3 + 3 + 2


def test_spatialdata_zarr_holds_the_same_points_and_cells(tmp_path):
    """Where the optional spatialdata package is installed (``starfish-batch[spatial]``)."""
    spatialdata = pytest.importorskip(
        "spatialdata", reason="spatialdata is not installed (the optional [spatial] extra)")
    import anndata as ad  # lazy: anndata ~4 s

    manifest, result = _cell_run(tmp_path, {"A1": 4, "B2": 0, "fov 3": 5})
    sdata = spatialdata.read_zarr(result.outputs["spatialdata"])
    points = sdata.points["transcripts"].compute()
    df = _parquet(result)
    assert len(points) == len(df)
    for col in ("x", "y", "z", "spot_id", "passes_thresholds", "distance"):
        np.testing.assert_array_equal(points[col].to_numpy(), df[col].to_numpy(), err_msg=col)
    assert points["target"].astype(str).tolist() == df["target"].astype(str).tolist()
    with storage.local_copy(result.outputs["cells"]) as path:
        cells = ad.read_h5ad(path)
    table = sdata.tables["cells"]
    assert table.obs_names.tolist() == cells.obs_names.tolist()
    assert (table.X != cells.X).nnz == 0


def test_cell_counts_when_a_cell_comes_back_after_its_fov_seemed_done(tmp_path):
    """The counter makes a FOV's counts final when a block ends with another FOV; should a
    cell come back later anyway (FOV names that disagree), its counts still add up."""
    counter = CellCounter()

    def block(cells, targets, last_fov, fov="A"):
        n = len(cells)
        factors = {"fov": ([fov], np.zeros(n, dtype=np.intp)),
                   "cell_id": (sorted(set(cells)), np.array([sorted(set(cells)).index(c) for c in cells])),
                   "target": (sorted(set(targets)), np.array([sorted(set(targets)).index(t) for t in targets]))}
        arrays = {"xc": np.arange(n, dtype=float), "yc": np.zeros(n)}
        counter.add_block(arrays, factors, np.ones(n, dtype=bool), last_fov)

    block(["1", "2", "2"], ["G1", "G2", "G2"], last_fov="not-A")
    block(["1", "3", "1"], ["G2", "G1", "G2"], last_fov="not-A")
    block(["1"], ["G1"], last_fov="B", fov="B")
    block(["2"], ["G1"], last_fov="A")  # A again, after B: its cells are found again
    import anndata as ad  # lazy: anndata ~4 s

    counter.write_h5ad(tmp_path / "cells.h5ad")
    adata = ad.read_h5ad(tmp_path / "cells.h5ad")
    got = adata.to_df()
    assert adata.obs_names.tolist() == ["A:1", "A:2", "A:3", "B:1"]
    assert got.loc["A:1"].tolist() == [1.0, 2.0]
    assert got.loc["A:2"].tolist() == [1.0, 2.0]
    assert got.loc["A:3"].tolist() == [1.0, 0.0]
    assert got.loc["B:1"].tolist() == [1.0, 0.0]
    assert adata.obs["fov"].tolist() == ["A", "A", "A", "B"]
