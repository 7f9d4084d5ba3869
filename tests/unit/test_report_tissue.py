"""report.html's tissue data (collected in the merge's pass) and the page's defects, each fixed:
medians, raw None, Batch-only sections, outliers beyond noise, relative output links, the S3
content type, the decoding-QC figures."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from starfish_batch.core.manifest import Manifest
from starfish_batch.core.report import RunReport, fov_rows, render_html
from starfish_batch.core.report import collect as run_report
from starfish_batch.core.report.tissue import decode_points, decoding_figures, unb64
from starfish_batch.merge.cells import CellCounter
from starfish_batch.merge.tissue import TissueCollector


def _block(rng, n, genes, fov="f0", x0=0.0, decoded_share=0.8):
    names = list(genes)
    codes = rng.integers(0, len(names), n)
    arrays = {"xc": x0 + rng.random(n) * 100.0, "yc": rng.random(n) * 100.0,
              "distance": rng.random(n).astype(np.float32)}
    data = rng.random((n, 4, 4)).astype(np.float32)
    factors = {"target": (names, codes), "fov": ([fov], np.zeros(n, np.intp))}
    decoded = rng.random(n) < decoded_share
    return arrays, data, factors, decoded


def test_collector_keeps_every_transcript_of_a_small_run():
    rng = np.random.default_rng(1)
    tissue = TissueCollector()
    kept = []
    for k in range(3):
        arrays, data, factors, decoded = _block(rng, 500, ["A", "B", "C"], fov=f"f{k}", x0=100.0 * k)
        tissue.add_block(arrays, data, factors, decoded)
        names, codes = factors["target"]
        kept += [(x, y, names[c]) for x, y, c, d in zip(arrays["xc"], arrays["yc"], codes, decoded, strict=True) if d]
    payload = tissue.payload()
    assert payload["exact"] and payload["n_transcripts"] == len(kept)
    pts = decode_points(payload)
    x0, x1, y0, y1 = payload["box"]

    def steps(x, y, g):  # the payload's resolution: 65,535 steps across the box
        return g, round((x - x0) / (x1 - x0) * 65535), round((y - y0) / (y1 - y0) * 65535)

    drawn = [steps(x, y, payload["genes"][g]) for x, y, g in zip(pts["x"], pts["y"], pts["gene"], strict=True)]
    assert sorted(drawn) == sorted(steps(*p) for p in kept)
    density = np.frombuffer(__import__("base64").b64decode(payload["density"]["counts"]), np.uint16)
    assert density.sum() == len(kept)


def test_collector_of_a_large_run_is_bounded_and_keeps_rare_genes_whole():
    rng = np.random.default_rng(2)
    tissue = TissueCollector(max_points=2_000)
    rare = 0
    for k in range(40):
        arrays, data, factors, decoded = _block(rng, 1_000, ["common"], fov=f"f{k}", x0=1e4 * k)
        tissue.add_block(arrays, data, factors, decoded)
        if k % 10 == 0:  # a rare gene: 5 transcripts now and then
            arrays, data, factors, decoded = _block(rng, 5, ["rare"], fov=f"f{k}", x0=1e4 * k, decoded_share=2)
            tissue.add_block(arrays, data, factors, decoded)
            rare += 5
    payload = tissue.payload()
    assert not payload["exact"]
    assert payload["points"]["n"] <= 2 * 2_000
    gene_start = payload["points"]["gene_start"]
    assert gene_start[2] - gene_start[1] == rare  # every transcript of the rare gene
    assert sum(payload["gene_counts"]) == payload["n_transcripts"]
    density = np.frombuffer(__import__("base64").b64decode(payload["density"]["counts"]), np.uint16)
    assert density.sum() == payload["n_transcripts"]  # binned, but every transcript counted


def _page(seconds=None, cost=None, attempts=None, **kw) -> str:
    names = [f"f{i}" for i in range(len(seconds or [1, 1, 1, 1]))]
    fovs = {n: {"features": 10, "spots": 5, "seconds": s} for n, s in zip(names, seconds or [1, 1, 1, 1], strict=True)}
    rows = fov_rows(names, {"fovs": fovs})
    for r in rows:
        r.attempts = attempts
    return render_html(RunReport(run_id="r", state="merged", fovs=rows, written_at="now", cost=cost, **kw))


def test_median_of_an_even_number_of_fovs():
    html = _page(seconds=[1.0, 2.0, 3.0, 100.0])
    assert "median 2.5," in html  # the mean of the middle two, not the upper one (3)


def test_no_raw_none_and_no_batch_sections_on_a_local_run():
    local_bill = {"jobs": 4, "attempts": 4, "retries": 0, "vcpu_hours": 0.01, "gb_hours": 0.02,
                  "cost_usd": None, "prices": "", "note": "local run"}
    html = _page(cost=local_bill)
    text = re.sub(r"<script.*?</script>", "", html, flags=re.S)
    assert "None" not in text
    assert "Cost estimate" not in html
    assert "attempts" not in text and "retries" not in text
    assert "Compute used" in html and "0.01" in html  # what a local run used, still shown
    batch = _page(cost={**local_bill, "cost_usd": 1.25}, attempts=1)
    assert "Cost estimate" in batch and "1.25" in batch
    assert "attempts: known for 4 FOV(s)" in batch


def test_outliers_only_beyond_a_relative_and_an_absolute_margin():
    noise = _page(seconds=[1.9] * 20 + [3.0])
    assert ">outlier<" not in noise
    slow = _page(seconds=[1.9] * 20 + [300.0])
    assert ">outlier<" in slow


def test_output_links_are_relative_to_the_page(tmp_path):
    manifest = Manifest(run_id="r1", experiment_url=str(tmp_path / "nowhere.json"), recipe_url="x",
                        recipe_sha256="0" * 64, results_url=str(tmp_path / "results"), fovs=["a"])
    root = tmp_path / "results" / "r1"
    summary = {"fovs": {"a": {"features": 1, "spots": 1}},
               "outputs": {"merged": str(root / "merged_decoded_fovs.nc"), "spots": "decoded_spots.csv.gz",
                           "elsewhere": "/data/other/place.nc"}}
    report = run_report.collect(manifest, summary=summary, records={}, state="merged", source="test", lookups=0)
    html = render_html(report)
    assert '<a href="merged_decoded_fovs.nc">' in html
    assert '<a href="decoded_spots.csv.gz">' in html
    assert str(root / "merged_decoded_fovs.nc") not in html
    assert '<a href="/data/other' not in html


def test_report_in_s3_is_served_as_html(moto_s3):
    moto_s3.create_bucket(Bucket="results")
    manifest = Manifest(run_id="r1", experiment_url="s3://results/none.json", recipe_url="x",
                        recipe_sha256="0" * 64, results_url="s3://results", fovs=["a"])
    report = RunReport(run_id="r1", state="merged", fovs=fov_rows(["a"]), written_at="now")
    run_report.write(manifest, report)
    head = moto_s3.head_object(Bucket="results", Key="r1/report.html")
    assert head["ContentType"] == "text/html; charset=utf-8"


def test_decoding_figures_blank_rate_and_iss_nf_fdr():
    targets = {"GENE1": {"spots": 60}, "GENE2": {"spots": 30}, "Blank-01": {"spots": 8}, "blank_02": {"spots": 2}}
    report = RunReport(run_id="r", state="merged", fovs=[], written_at="now", targets=targets, n_spots=100,
                       codebook=["GENE1", "GENE2", "GENE3", "Blank-01", "blank_02"])
    figs = decoding_figures(report)
    assert figs["zero"] == ["GENE3"]
    assert (figs["panel_n"], figs["empty_n"], figs["empties"]) == (3, 2, 10)
    assert figs["blank_rate"] == pytest.approx(0.10)
    assert figs["fdr"] == pytest.approx((10 / 100) * (3 / 2))
    html = render_html(report)
    assert "15.00%" in html and "GENE3" in html.split('id="decoding"')[1]


def test_a_gene_name_cannot_end_the_maps_script():
    rng = np.random.default_rng(3)
    tissue = TissueCollector()
    evil = "</script><script>alert(1)</script><!--"
    arrays, data, factors, decoded = _block(rng, 50, ["A", evil])
    tissue.add_block(arrays, data, factors, decoded)
    report = RunReport(run_id="r", state="merged", fovs=[], written_at="now", tissue=tissue.payload(), n_spots=1)
    html = render_html(report)
    data_text = html.split('id="tissue-data">', 1)[1].split("</script>", 1)[0]
    assert evil in json.loads(data_text)["genes"]  # the whole payload, up to the element's real end
    assert html.count("<script>alert(1)") == 0


def test_cells_from_the_merges_counter():
    """Centroids, transcripts per cell and cells per FOV, from merge.cells.CellCounter's sums."""
    counter, tissue = CellCounter(), TissueCollector()
    # FOV a: cell 1 at (10, 10) with 3 decoded spots, cell 2 at (30, 10) with 1; FOV b: cell 1 at (110, 50), 2
    xs = np.array([9.0, 10.0, 11.0, 30.0, 109.0, 111.0, 50.0])
    ys = np.array([10.0, 10.0, 10.0, 10.0, 50.0, 50.0, 50.0])
    arrays = {"xc": xs, "yc": ys}
    factors = {"fov": (["a", "b"], np.array([0, 0, 0, 0, 1, 1, 0])),
               "cell_id": (["1", "2", "nan"], np.array([0, 0, 0, 1, 0, 0, 2])),
               "target": (["G"], np.zeros(7, np.intp))}
    decoded = np.ones(7, bool)
    counter.add_block(arrays, factors, decoded, None)
    tissue.add_block(arrays, None, factors, decoded)
    payload = tissue.payload(cells=counter)
    cells = payload["cells"]
    assert cells["n"] == 3 and dict(zip(cells["fov_names"], cells["per_fov"], strict=True)) == {"a": 2, "b": 1}
    assert sorted(unb64(cells["spots"], np.uint32).tolist()) == [1, 2, 3]
    x0, x1, y0, y1 = payload["box"]
    cx = x0 + unb64(cells["centroids"]["x"], np.uint16) / 65535 * (x1 - x0)
    cy = y0 + unb64(cells["centroids"]["y"], np.uint16) / 65535 * (y1 - y0)
    got = sorted(zip(np.round(cx, 2), np.round(cy, 2), unb64(cells["centroids"]["spots"], np.uint32), strict=True))
    assert got == [(10.0, 10.0, 3), (30.0, 10.0, 1), (110.0, 50.0, 2)]
    html = render_html(RunReport(run_id="r", state="merged", fovs=[], written_at="now", tissue=payload, n_spots=7))
    assert "3 cells in 2 FOVs" in html and 'id="cells-img"' in html


def test_a_fault_in_the_collector_never_stops_the_merge():
    tissue = TissueCollector()
    broken = {"xc": np.zeros(3), "yc": np.zeros(3)}
    tissue.add_block(broken, None, {"target": (["A"], np.array([0, 0, 5]))}, np.ones(3, bool))  # code 5: no gene
    assert tissue.error and "IndexError" in tissue.error
    tissue.add_block(broken, None, {}, np.ones(3, bool))  # later blocks are ignored
    with pytest.raises(RuntimeError, match="collecting the tissue failed"):
        tissue.payload()
