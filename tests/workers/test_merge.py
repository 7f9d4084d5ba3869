"""merge-batch-job: the merged table equals starfish's concatenation of the per-FOV tables."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from starfish_batch.core import storage
from starfish_batch.core.manifest import Manifest
from starfish_batch.demo.testing import open_table, synthetic_decoded_table, write_fake_run
from starfish_batch.merge import job as merge
from starfish_batch.merge import reader, writer

warnings.filterwarnings("ignore", category=DeprecationWarning)

FOVS = {"A1": 37, "x-ray_2": 0, "fov 3": 120, "Z-last": 5}
"""FOV names (not fov_NNN) and their feature counts, one of them empty."""


def _table(n: int, seed: int):
    return synthetic_decoded_table(n, seed=seed, shape=(60, 80), origin_um=(seed * 10.0, 0.0))


write_run = write_fake_run
open_local = open_table


def starfish_concat(manifest: Manifest, fovs=None):
    """What starfish itself gives: concatenate_intensity_tables of the non-empty tables."""
    from starfish import IntensityTable  # lazy: import starfish takes seconds

    tables = [open_local(manifest.fov_url(f, ".nc")) for f in (fovs or manifest.run_fovs)]
    tables = [t for t in tables if t.sizes["features"]] or tables[:1]
    return IntensityTable.concatenate_intensity_tables(tables)


def assert_same_table(got, want):
    assert type(got).__name__ == "DecodedIntensityTable"
    xr.testing.assert_identical(got, want)
    assert got.dims == want.dims
    assert got.dtype == want.dtype
    assert set(got.coords) == set(want.coords)
    for name in want.coords:
        assert got[name].dtype == want[name].dtype, name
        assert got[name].dims == want[name].dims, name


def test_merged_equals_starfish_concatenation(tmp_path):
    manifest = write_run(str(tmp_path / "results"), FOVS)
    result = merge.merge_run(manifest)
    assert result.missing == []
    assert result.n_fovs == len(FOVS)
    assert result.n_features == sum(FOVS.values())
    merged = open_local(result.merged_url)
    assert_same_table(merged, starfish_concat(manifest))
    # features in manifest order, labelled with their FOV
    expected = np.concatenate([np.full(n, f) for f, n in FOVS.items()])
    assert merged["fov"].values.tolist() == expected.tolist()
    assert merged.attrs["starfish"].startswith('{"log"')


def test_long_non_ascii_and_many_distinct_strings(tmp_path):
    """Strings are read as fixed-width bytes, 16 first: longer ones (FOV names, targets),
    multi-byte UTF-8 and a column of many distinct values come out exactly."""
    fovs = {"a-field-of-view-whose-name-is-longer-than-32-bytes": 50, "é-fov": 30, "B": 0}
    tables = {}
    for i, (fov, n) in enumerate(fovs.items()):
        table = _table(n, seed=i + 1)
        names = [f"gène-{j % 23}-" + "x" * (j % 41) for j in range(n)]
        tables[fov] = table.assign_coords(target=("features", np.array(names, dtype=str)))
    manifest = write_run(str(tmp_path / "results"), fovs, tables=tables)
    result = merge.merge_run(manifest)
    merged = open_local(result.merged_url)
    assert_same_table(merged, starfish_concat(manifest))
    assert max(len(t.encode()) for t in merged["target"].values.tolist()) > 32
    assert set(merged["fov"].values.tolist()) == {"a-field-of-view-whose-name-is-longer-than-32-bytes",
                                                   "é-fov"}


def test_small_blocks_and_fovs_split_across_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "BLOCK_FEATURES", 16)
    monkeypatch.setattr(writer, "CHUNK_FEATURES", 8)
    sizes = []
    append = writer.MergedWriter.append
    monkeypatch.setattr(writer.MergedWriter, "append",
                        lambda self, block: (sizes.append(block.size), append(self, block))[1])
    fovs = {"a": 15, "b": 40, "c": 0, "d": 16, "e": 1}
    manifest = write_run(str(tmp_path / "r"), fovs)
    result = merge.merge_run(manifest)
    assert_same_table(open_local(result.merged_url), starfish_concat(manifest))
    assert sizes == [16, 16, 16, 16, 8]
    import h5py  # lazy: h5py ~0.2 s

    with h5py.File(storage.absolute(result.merged_url)) as f:
        assert f["target"].chunks == (8,)


def test_dims_order_and_dtypes_differ(tmp_path):
    """A table stored (features, c, r) and one with float32 intensities are still merged as xr.concat does."""
    a = _table(12, seed=1)
    b = _table(9, seed=2).transpose("features", "c", "r")
    c = _table(7, seed=3)
    c = c.copy(data=c.values.astype(np.float32))
    manifest = write_run(str(tmp_path / "r"), {"a": 12, "b": 9, "c": 7},
                         tables={"a": a, "b": b, "c": c})
    result = merge.merge_run(manifest)
    merged = open_local(result.merged_url)
    assert_same_table(merged, starfish_concat(manifest))
    assert merged.dtype == np.float64


def _as_dataset(table):
    return table.to_dataset(name="v").reset_coords([k for k in table.coords if k not in table.dims])


def filled_concat(manifest: Manifest):
    """xr.concat with coordinates that some tables lack filled as missing data variables are
    (NaN, ints and bools promoted), strings filled with "" (documented in merge/schema.py)."""
    tables = [open_local(manifest.fov_url(f, ".nc")) for f in manifest.run_fovs]
    tables = [t for t in tables if t.sizes["features"]]
    ds = xr.concat([_as_dataset(t) for t in tables], dim="features", data_vars="all",
                   join="outer", combine_attrs="override")
    for name, var in ds.data_vars.items():
        if var.dtype == object:
            ds[name] = var.fillna("").astype(str)
    first = tables[0]
    out = ds.set_coords([k for k in ds.data_vars if k != "v"])["v"].rename(None)
    out.attrs = first.attrs
    return type(first)(out)


def test_different_optional_coordinates(tmp_path, capsys):
    a = _table(10, seed=1)
    b = _table(6, seed=2).drop_vars(["spot_id", "target"])  # an int and a string coordinate
    b = b.assign_coords(quality=("features", np.linspace(0, 1, 6)))  # new float coordinate
    b = b.assign_coords(rounds_used=("features", np.arange(6, dtype=np.int64)))  # new int
    c = _table(4, seed=3).drop_vars(["passes_thresholds", "distance"])  # bool and float
    empty = _table(0, seed=4)
    manifest = write_run(str(tmp_path / "r"), {"a": 10, "b": 6, "e": 0, "c": 4},
                         tables={"a": a, "b": b, "e": empty, "c": c})
    result = merge.merge_run(manifest)
    merged = open_local(result.merged_url)
    want = filled_concat(manifest)
    assert_same_table(merged, want)
    assert merged["spot_id"].dtype == np.float64 and np.isnan(merged["spot_id"].values[10:16]).all()
    assert merged["passes_thresholds"].dtype == np.float64
    assert merged["target"].values[10:16].tolist() == [""] * 6
    assert np.isnan(merged["quality"].values[:10]).all()
    assert result.notes  # it said why it widened the schema
    assert "coordinate" in capsys.readouterr().err


def test_missing_fov_fails_and_writes_nothing(tmp_path, capsys):
    results = tmp_path / "results"
    fovs = {f"well-{i}": 3 for i in range(25)}
    manifest = write_run(str(results), fovs)
    for i in (2, 5, 7, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 0, 1, 3, 4):
        Path(storage.absolute(manifest.fov_url(f"well-{i}", ".nc"))).unlink()
    before = sorted(p.name for p in Path(manifest.run_root).rglob("*"))
    code = merge.main(["--manifest-url", storage.join(manifest.run_root, "manifest.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and err[0].startswith("merge-batch-job: 22 of 25 FOVs have no output")
    assert "well-2" in err[0] and "and 2 more" in err[0] and "--allow-partial" in err[0]
    assert sorted(p.name for p in Path(manifest.run_root).rglob("*")) == before


def test_allow_partial(tmp_path, capsys, monkeypatch):
    manifest = write_run(str(tmp_path / "results"), FOVS)
    Path(storage.absolute(manifest.fov_url("fov 3", ".nc"))).unlink()
    monkeypatch.setenv("RUN_MANIFEST_URL", storage.join(manifest.run_root, "manifest.json"))
    monkeypatch.setenv("MERGE_ALLOW_PARTIAL", "1")
    assert merge.main([]) == 0
    err = capsys.readouterr().err
    assert "1 of 4 FOVs missing" in err and "fov 3" in err
    merged = open_local(storage.join(manifest.run_root, "merged_decoded_fovs.nc"))
    assert_same_table(merged, starfish_concat(manifest, ["A1", "x-ray_2", "Z-last"]))
    summary = json.loads(storage.read_text(storage.join(manifest.run_root, "summary.json")))
    assert summary["missing_fovs"] == ["fov 3"]
    assert summary["n_fovs"] == 4 and summary["n_fovs_merged"] == 3


def test_all_empty_run(tmp_path):
    manifest = write_run(str(tmp_path / "r"), {"e1": 0, "e2": 0})
    result = merge.merge_run(manifest)
    merged = open_local(result.merged_url)
    assert merged.sizes["features"] == 0
    assert_same_table(merged, starfish_concat(manifest))
    summary = json.loads(storage.read_text(result.outputs["summary"]))
    assert summary["n_features"] == 0 and summary["fovs_without_spots"] == ["e1", "e2"]


def test_no_output_at_all_and_bad_manifest(tmp_path, capsys):
    manifest = write_run(str(tmp_path / "r"), {"a": 2})
    Path(storage.absolute(manifest.fov_url("a", ".nc"))).unlink()
    url = storage.join(manifest.run_root, "manifest.json")
    assert merge.main(["--manifest-url", url, "--allow-partial"]) == 1
    assert capsys.readouterr().err.strip().startswith("merge-batch-job: none of the 1 FOVs")
    assert merge.main(["--manifest-url", str(tmp_path / "nope.json")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope.json" in err[0]


def test_corrupt_fov_fails_with_its_name_and_publishes_nothing(tmp_path, capsys):
    manifest = write_run(str(tmp_path / "r"), {"good": 4, "bad": 3})
    Path(storage.absolute(manifest.fov_url("bad", ".nc"))).write_bytes(b"not netcdf")
    assert merge.main(["--manifest-url", storage.join(manifest.run_root, "manifest.json")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "fovs/bad.nc" in err[-1] and err[-1].startswith("merge-batch-job: ")
    names = {p.name for p in Path(manifest.run_root).iterdir()}
    assert names == {"fovs", "manifest.json"}


@pytest.mark.usefixtures("moto_s3")
def test_merge_in_s3(moto_s3):
    moto_s3.create_bucket(Bucket="results")
    manifest = write_run("s3://results/runs", FOVS, run_id="s3-run")
    result = merge.merge_run(manifest)
    assert result.merged_url == "s3://results/runs/s3-run/merged_decoded_fovs.nc"
    assert_same_table(open_local(result.merged_url), starfish_concat(manifest))
    keys = {o["Key"] for o in moto_s3.list_objects_v2(Bucket="results")["Contents"]}
    for name in ("merged_decoded_fovs.nc", "decoded_spots.csv.gz", "summary.json", "qc.png"):
        assert f"runs/s3-run/{name}" in keys
    # a missing FOV in S3: non-zero, the name in the message, nothing new written
    moto_s3.delete_object(Bucket="results", Key="runs/s3-run/fovs/A1.nc")
    moto_s3.delete_object(Bucket="results", Key="runs/s3-run/merged_decoded_fovs.nc")
    with pytest.raises(Exception, match="A1"):
        merge.merge_run(manifest)
    keys = {o["Key"] for o in moto_s3.list_objects_v2(Bucket="results")["Contents"]}
    assert "runs/s3-run/merged_decoded_fovs.nc" not in keys
