"""decoded_spots.csv.gz, summary.json and qc.png, written by the merge beside the merged table."""

from __future__ import annotations

import gzip
import io
import json
import re
import struct

import numpy as np
import pandas as pd
import pytest

from starfish_batch.core import storage
from starfish_batch.core.records import Summary
from starfish_batch.demo.testing import open_table as open_local
from starfish_batch.demo.testing import synthetic_decoded_table
from starfish_batch.demo.testing import write_fake_run as write_run
from starfish_batch.merge import job as merge
from starfish_batch.merge import plot as qcplot
from starfish_batch.merge import spots
from starfish_batch.merge import summary as summary_mod

FOVS = {"A1": 37, "x-ray_2": 0, "fov 3": 120, "Z-last": 5}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    results = tmp_path_factory.mktemp("outputs") / "results"
    manifest = write_run(str(results), FOVS)
    result = merge.merge_run(manifest)
    merged = open_local(result.merged_url)
    return manifest, result, merged


def _spots_frame(result) -> pd.DataFrame:
    data = storage.read_bytes(result.outputs["spots"])
    assert data[:2] == b"\x1f\x8b"  # gzip
    return pd.read_csv(io.BytesIO(gzip.decompress(data)), keep_default_na=False,
                       na_values=[""], dtype={"fov": str, "target": str})


def test_csv_rows_match_the_merged_table(run):
    _, result, merged = run
    df = _spots_frame(result)
    assert list(df.columns) == [c for c in spots.COLUMNS if c != "cell_id"]  # cell_id: only with cells
    assert len(df) == merged.sizes["features"] == result.n_features
    assert df["fov"].tolist() == merged["fov"].values.tolist()
    # an undecoded target ("nan" in the table) is an empty cell, read as NaN
    want = [None if t.lower() in ("", "nan") else t for t in merged["target"].values.tolist()]
    assert df["target"].astype(object).where(df["target"].notna(), None).tolist() == want
    assert df["passes_thresholds"].tolist() == merged["passes_thresholds"].values.tolist()
    for name in ("x", "y", "z"):
        assert df[name].tolist() == merged[name].values.tolist()
    for name in ("xc", "yc", "zc", "distance", "radius", "intensity"):
        want = merged[name].values.astype(float)
        np.testing.assert_allclose(df[name].to_numpy(float), want, rtol=0,
                                   atol=1e-6 * max(1.0, np.abs(want).max()))
    peak = merged.max(dim=("r", "c")).values
    np.testing.assert_allclose(df["max_intensity"].to_numpy(float), peak, rtol=0, atol=1e-7)


def test_summary_counts(run):
    _, result, merged = run
    summary = json.loads(storage.read_text(result.outputs["summary"]))
    decoded = merged["passes_thresholds"].values & (merged["target"].values != "")
    assert summary["n_features"] == merged.sizes["features"]
    assert summary["n_spots"] == int(decoded.sum()) == result.n_spots
    fovs = merged["fov"].values
    for fov, n in FOVS.items():
        entry = summary["fovs"][fov]
        assert entry["features"] == n
        assert entry["spots"] == int(decoded[fovs == fov].sum())
        assert entry["seconds"] > 0 and entry["peak_memory_bytes"] == 10_000_000
    targets = merged["target"].values
    for target, entry in summary["targets"].items():
        assert entry["features"] == int((targets == target).sum())
        assert entry["spots"] == int(decoded[targets == target].sum())
    counts = [e["spots"] for e in summary["targets"].values()]
    assert counts == sorted(counts, reverse=True)
    # starfish's placeholder for a feature that did not decode is counted, never listed as a target
    undecoded = np.isin(np.char.lower(targets.astype(str)), ["", "nan", "none", "null"])
    assert not set(summary["targets"]) & {"", "nan", "None", "none", "null"}
    assert summary["n_features_without_target"] == int(undecoded.sum())
    assert sum(e["features"] for e in summary["targets"].values()) + int(undecoded.sum()) == summary["n_features"]
    assert summary["fovs_without_spots"] == ["x-ray_2"]
    assert summary["fovs_without_features"] == ["x-ray_2"]
    assert summary["missing_fovs"] == []
    assert summary["timings"]["merge_seconds"] > 0
    assert summary["timings"]["fov_records"] == len(FOVS)
    assert summary["timings"]["fov_seconds_total"] == pytest.approx(1.5 + 2.5 + 3.5 + 4.5)
    assert summary["outputs"]["merged"] == "merged_decoded_fovs.nc"  # relative to the run folder


def test_merge_writes_report_html_with_each_fov_where_it_is(run):
    manifest, result, _ = run
    summary = json.loads(storage.read_text(result.outputs["summary"]))
    for i, fov in enumerate(FOVS):  # each record's stage extent, carried into summary.json
        assert summary["fovs"][fov]["extent"] == {"xc": [i * 10.0, i * 10.0 + 8.0], "yc": [0.0, 6.0]}
    page = storage.read_text(result.outputs["report"])
    assert result.outputs["report"] == storage.join(manifest.run_root, "report.html")
    assert 'class="state merged"' in page and "merge-batch-job" in page
    marks = re.findall(r'<rect class="m ([a-z]+)[^"]*" x="([0-9.]+)"[^>]*><title>([^:<]*):', page)
    assert sorted(name for _, _, name in marks) == sorted(FOVS)
    assert {name: status for status, _, name in marks}["x-ray_2"] == "empty"
    xs = [float(x) for _, x, _ in marks]
    assert xs == sorted(xs) and len(set(xs)) == len(FOVS)  # placed left to right, as their extents are
    assert "no stage position" not in page


def test_qc_png_is_a_real_image(run):
    _, result, _ = run
    data = storage.read_bytes(result.outputs["qc"])
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert 1000 <= width <= 4000 and 400 <= height <= 2000
    assert len(data) > 20_000


def _pixels(data: bytes) -> np.ndarray:
    from PIL import Image  # lazy: PIL ~25 ms

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _has(region: np.ndarray, color: str) -> bool:
    rgb = [int(color[i: i + 2], 16) for i in (1, 3, 5)]
    return bool((region == rgb).all(axis=2).any())


def test_qc_png_draws_each_panel(run):
    """Bars per FOV on the left, target bars in the middle, the map's coloured dots right."""
    _, result, _ = run
    pixels = _pixels(storage.read_bytes(result.outputs["qc"]))
    (f0, _, f1, _), (t0, _, t1, _), (m0, top, m1, bottom) = qcplot._panel_boxes()
    assert _has(pixels[:, f0:f1], qcplot.BLUE)
    assert not _has(pixels[:, f0:f1], qcplot.GREEN)
    assert _has(pixels[:, t0:t1], qcplot.GREEN)
    inside_map = pixels[top + 1: bottom, m0 + 1: m1]
    assert _has(inside_map, qcplot.TAB20[0]) and _has(inside_map, qcplot.TAB20[1])


def test_undecoded_features_are_counted_not_listed_as_a_target(tmp_path):
    """starfish marks what did not decode with the target "nan": summary.json counts those
    features apart, and neither its targets nor qc.png's top targets name "nan"."""
    table = synthetic_decoded_table(60, seed=4, targets=["EPCAM", "nan", "KRT8"])
    manifest = write_run(str(tmp_path / "results"), {"A1": 60, "B2": 10}, tables={"A1": table})
    result = merge.merge_run(manifest)
    summary = Summary.from_json(storage.read_bytes(result.outputs["summary"]))
    n_nan = int((table.coords["target"].values.astype(str) == "nan").sum())
    assert n_nan > 0
    assert summary.n_features_without_target == n_nan
    assert "nan" not in summary.targets and {"EPCAM", "KRT8"} <= set(summary.targets)
    assert sum(e["features"] for e in summary.targets.values()) == summary.n_features - n_nan


def test_qc_png_with_more_fovs_than_pixels(tmp_path):
    """10,000 FOVs: one pixel column per group of FOVs, the tallest drawn; no names."""
    counts = {f"fov_{i:05d}": (0 if i % 1000 == 7 else 100 + i % 50) for i in range(10_000)}
    summary = Summary(run_id="big", n_fovs=10_000, n_fovs_merged=10_000, n_features=0,
                      n_spots=sum(counts.values()), missing_fovs=[],
                      fovs_without_spots=[f for f, n in counts.items() if not n],
                      fovs={f: {"spots": n} for f, n in counts.items()}, targets={})
    path = tmp_path / "qc.png"
    qcplot.render_qc_png(path, summary, None, None)
    pixels = _pixels(path.read_bytes())
    f0, top, f1, bottom = qcplot._panel_boxes()[0]
    blue = (pixels[top:bottom, f0 + 1: f1] == [0x1F, 0x77, 0xB4]).all(axis=2)
    assert blue.any(axis=0).mean() > 0.95  # nearly every column has a bar


def test_nice_ticks():
    assert qcplot.nice_ticks(0, 3402) == [0, 1000, 2000, 3000]
    assert qcplot.nice_ticks(0, 1) == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert qcplot.nice_ticks(-3.5, 96.5) == [0, 20, 40, 60, 80]
    assert qcplot.nice_ticks(5, 5) == [5]
    assert qcplot.tick_label(2000, [0, 1000, 2000]) == "2,000"
    assert qcplot.tick_label(0.4, [0, 0.2, 0.4]) == "0.4"


def test_float_formatting_round_trips():
    values = np.array([0.0, 1.5, -2.25, np.nan, 123.456789, 1e-9, -1e-7, np.inf, 7.0])
    cells = [bytes(row[row != 0]).decode() for row in spots.format_float(values)]
    assert cells == ["0", "1.5", "-2.25", "", "123.4568", "0", "0", "inf", "7"]
    assert [bytes(r[r != 0]).decode() for r in spots.format_int(np.array([0, 5, -12, 10**12]))] \
        == ["0", "5", "-12", "1000000000000"]
    text = spots.render([spots.format_strings(np.array(["a,b", 'q"t', "é"], dtype=object)),
                         spots.format_float(np.array([1.0, np.nan, 2.5]))]).decode()
    assert text == '"a,b",1\n"q""t",\né,2.5\n'


def test_large_values_fall_back_to_repr():
    cells = [bytes(r[r != 0]).decode() for r in spots.format_float(np.array([1e300, 2.0]))]
    assert float(cells[0]) == 1e300 and float(cells[1]) == 2.0


def test_bounded_plot_sample(monkeypatch, tmp_path):
    """The map of spots keeps at most MAX_PLOT_POINTS whatever the run size."""
    monkeypatch.setattr(summary_mod, "MAX_PLOT_POINTS", 50)
    fovs = {f"f{i}": 40 for i in range(6)}
    tables = {f: synthetic_decoded_table(40, seed=i) for i, f in enumerate(fovs)}
    manifest = write_run(str(tmp_path / "r"), fovs, tables=tables)
    result = merge.merge_run(manifest)
    summary = json.loads(storage.read_text(result.outputs["summary"]))
    assert summary["n_spots"] > 50
    assert storage.read_bytes(result.outputs["qc"])[:4] == b"\x89PNG"
