"""A second assay on real images: MERFISH (pixel decoding, 16-bit codes with blank barcodes) on
the real MERlin crop, through the launcher, equal to a serial in-process starfish run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.workflow import REPO_ROOT, assert_same_table, launch, serial_starfish_run

CROP = REPO_ROOT.parent / "shared" / "data" / "merfish_merlin_crop"
MERFISH_RECIPE = REPO_ROOT / "examples" / "merfish_recipe.py"


@pytest.fixture(scope="module")
def merfish_run(tmp_path_factory):
    if not (CROP / "experiment_full.json").is_file():
        pytest.skip(f"the real MERFISH crop is not on this machine ({CROP})")
    results = tmp_path_factory.mktemp("results")
    # experiment_full also holds fiducial beads and polyT images, which the recipe does not use
    proc = launch("--experiment-url", CROP / "experiment_full.json", "--recipe", MERFISH_RECIPE,
                  "--results-url", results, "--run-id", "merfish", "--workers", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return results / "merfish"


def test_merfish_crop_merged_equals_serial_starfish(merfish_run: Path, tmp_path: Path):
    from starfish import DecodedIntensityTable  # lazy: import starfish takes seconds

    records = [json.loads(p.read_text()) for p in sorted((merfish_run / "fovs").glob("*.json"))]
    assert [r["fov"] for r in records] == ["fov_000", "fov_001"]
    assert all(r["tiles"] == 26 for r in records)  # 16 primary, 8 beads, nuclei, polyT
    cpus = {r["cpus"] for r in records}
    assert len(cpus) == 1
    reference, tables = serial_starfish_run(str(CROP / "experiment_full.json"), MERFISH_RECIPE, cpus.pop())
    # starfish keeps pixel-decoded targets as Python objects in memory; its own netCDF round
    # trip (to_netcdf, open_netcdf) makes them fixed-width strings, as in every file we write
    reference.to_netcdf(str(tmp_path / "reference.nc"))
    reference = DecodedIntensityTable.open_netcdf(str(tmp_path / "reference.nc"))
    merged = DecodedIntensityTable.open_netcdf(str(merfish_run / "merged_decoded_fovs.nc"))
    assert_same_table(merged, reference)
    decoded = merged.where(merged.coords["passes_thresholds"], drop=True)
    targets = set(decoded.coords["target"].values.tolist())
    assert decoded.sizes["features"] >= 20  # a few dozen spots on real images
    assert any(not t.startswith("Blank") for t in targets)


def test_merfish_crop_transcripts_parquet(merfish_run: Path):
    """Pixel decoding's table (no radius, no spot finder's intensity): the Parquet file has
    the merged table's rows and the columns it can have, and no cells.h5ad is written."""
    import numpy as np  # lazy: numpy ~0.2 s
    import pandas as pd  # lazy: pandas ~1.8 s
    from starfish import DecodedIntensityTable  # lazy: import starfish takes seconds

    merged = DecodedIntensityTable.open_netcdf(str(merfish_run / "merged_decoded_fovs.nc"))
    df = pd.read_parquet(merfish_run / "transcripts.parquet")
    assert len(df) == merged.sizes["features"]
    for col, coord in (("xc", "xc"), ("yc", "yc"), ("x", "x"), ("y", "y"),
                       ("distance", "distance")):
        np.testing.assert_array_equal(df[col].to_numpy(), merged[coord].values, err_msg=col)
    assert df["target"].astype(str).tolist() == merged["target"].values.astype(str).tolist()
    assert ("radius" in df.columns) == ("radius" in merged.coords)
    assert not (merfish_run / "cells.h5ad").exists()
    summary = json.loads((merfish_run / "summary.json").read_text())
    assert any("cell_id" in note for note in summary["notes"])
