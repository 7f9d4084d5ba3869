"""report.html's tissue on the demo, in headless Chromium: every decoded transcript (and every
true spot) drawn at its stage position, read back from the map; picking genes
draws exactly their transcripts; zoom into a FOV; the pictures without JavaScript."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from tests.support.browser import chromium
from tests.support.workflow import ISS_RECIPE, launch, write_experiment

PIXEL = 0.5  # the demo's pixel size (write_demo_experiment's default), in stage units
MISSING = {"", "nan", "none", "null"}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tissue-run")
    experiment = write_experiment(tmp / "experiment")
    results = tmp / "results"
    proc = launch("--experiment-url", experiment, "--recipe", ISS_RECIPE, "--results-url", results,
                  "--run-id", "tissue")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return results / "tissue", experiment.parent


def _decoded(root) -> pd.DataFrame:
    frame = pd.read_parquet(root / "transcripts.parquet")  # xc, yc: the stage position (x, y: pixels)
    named = frame["target"].notna() & ~frame["target"].astype(str).str.strip().str.lower().isin(MISSING)
    keep = frame["passes_thresholds"].astype(bool) & named
    return frame[keep]


def _wait_for_map(page, timeout: float = 20.0) -> None:
    """The map's script runs once the page has loaded (the server's picture shows until then)."""
    deadline = time.monotonic() + timeout
    while page.evaluate("typeof window.tissueMap") != "object":
        assert time.monotonic() < deadline, "the tissue map's script did not run"
        time.sleep(0.05)


def _nearest(points: np.ndarray, x: float, y: float) -> float:
    return float(np.min(np.hypot(points[:, 0] - x, points[:, 1] - y))) if len(points) else np.inf


def test_every_spot_on_the_map_and_gene_picking(demo_run, tmp_path):
    root, demo = demo_run
    page_path = root / "report.html"
    decoded = _decoded(root)
    truth = pd.read_csv(demo / "ground_truth.csv")
    with chromium(tmp_path) as page:
        page.open(page_path)
        _wait_for_map(page)
        assert page.errors() == []
        assert [u for u in page.requests() if not u.startswith("data:")] == [page_path.resolve().as_uri()]
        drawn = page.evaluate("tissueMap.points()")
        box = page.evaluate("JSON.parse(document.getElementById('tissue-data').textContent).box")
        step = max(box[1] - box[0], box[3] - box[2]) / 65535  # the payload's resolution
        # every decoded transcript, once, at its position, with its gene
        assert len(drawn) == len(decoded) > 0
        want = sorted(zip(decoded["target"].astype(str), decoded["xc"], decoded["yc"], strict=True))
        got = sorted((g, x, y) for x, y, g in drawn)
        for (g, x, y), (dg, dx, dy) in zip(want, got, strict=True):
            assert g == dg and abs(x - dx) <= step and abs(y - dy) <= step, ((g, x, y), (dg, dx, dy))
        # every true spot the recipe found is drawn where it truly is (3 pixels: the scoring's radius)
        by_gene = {g: np.array([(x, y) for x, y, dg in drawn if dg == g]) for g in {d[2] for d in drawn}}
        found = [_nearest(by_gene.get(t.target, np.zeros((0, 2))), t.xc, t.yc) <= 3 * PIXEL
                 for t in truth.itertuples()]
        # (the demo's recipe finds every one of them: 60 of 60)
        assert all(found), f"{sum(found)} of {len(truth)} true spots drawn in place"
        # picking genes (ticked, then one more by name) draws exactly their transcripts
        genes = decoded["target"].astype(str).value_counts()
        first, second = genes.index[0], genes.index[-1]
        page.evaluate(f"(() => {{ const b = Array.from(document.querySelectorAll('#tissue-picks input'))"
                      f".find(i => i.value === {first!r}); b.checked = true;"
                      "b.dispatchEvent(new Event('change', {bubbles: true})); })()")
        only = page.evaluate("tissueMap.drawn()")
        assert sorted((round(x, 6), round(y, 6)) for x, y, g in only) == sorted(
            (round(x, 6), round(y, 6)) for x, y, g in drawn if g == first)
        assert {g for _, _, g in only} == {first} and len(only) == genes[first]
        page.evaluate(f"(() => {{ const i = document.getElementById('tissue-search'); i.value = {second!r};"
                      "i.dispatchEvent(new Event('change')); })()")
        both = page.evaluate("tissueMap.drawn()")
        assert sorted(g for _, _, g in both) == sorted([first] * int(genes[first]) + [second] * int(genes[second]))
        assert page.evaluate("tissueMap.picked()") == [first, second]
        # zoom into a FOV: its transcripts (of the picked genes), and no other FOV's
        page.evaluate("document.getElementById('tissue-clear').click()")
        fov = decoded["fov"].astype(str).value_counts().index[0]
        page.evaluate(f"tissueMap.zoom({fov!r})")
        zoomed = page.evaluate("tissueMap.drawn()")
        assert len(zoomed) == int((decoded["fov"].astype(str) == fov).sum())
        assert f"FOV {fov}" in page.evaluate("document.getElementById('tissue-status').textContent")
        shot = page.screenshot(tmp_path / "tissue.png")
        # without JavaScript: the pictures are there, drawn on the server
        page.send("Emulation.setScriptExecutionDisabled", {"value": True})
        page.open(page_path)
        sizes = page.evaluate("['tissue-img', 'fraction-img'].map(i => { const e = document.getElementById(i);"
                              " return e && !e.hidden && e.complete ? e.naturalWidth : 0 })")
        assert all(w > 100 for w in sizes), sizes
        assert page.evaluate("document.getElementById('tissue-controls').hidden") is True
    print(f"\nscreenshot: {shot}")


def test_status_draws_the_same_tissue(demo_run):
    """The launcher and ``status`` write the page again from report_tissue.json, which the merge left."""
    root, _ = demo_run
    before = (root / "report.html").read_text()
    assert launch("status", "tissue", "--results-url", root.parent).returncode == 0
    after = (root / "report.html").read_text()
    assert "by status" in after

    def data(page: str) -> str:
        return page.split('id="tissue-data">', 1)[1].split("</script>", 1)[0]

    assert data(after) == data(before)
    assert 'id="tissue-img"' in after and 'id="fraction-img"' in after
