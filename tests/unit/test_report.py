"""report.html rendered from plain data: FOV statuses, the map's marks, bounds at 10,000 FOVs."""

from __future__ import annotations

import re

from starfish_batch.core.experiment.documents import Document
from starfish_batch.core.experiment.extent import stage_extent
from starfish_batch.core.manifest import Manifest
from starfish_batch.core.report import (
    DONE,
    EMPTY,
    FAILED,
    MISSING,
    FailureRow,
    RunReport,
    fov_rows,
    render_html,
)
from starfish_batch.core.report.collect import collect
from starfish_batch.core.report.model import FovRow
from starfish_batch.core.report.page import outliers
from starfish_batch.core.report.svg import SHADES, fov_map

MARK = re.compile(r'<rect class="(m [^"]*)" [^>]*><title>([^<]*)</title>')


def _marks(html: str) -> list[tuple[str, str]]:
    """(classes, hover text) of every mark on the FOV map."""
    svg = html.split('<svg id="fovmap"', 1)[1].split("</svg>", 1)[0]
    return [(re.sub(r" d\d", "", classes), title) for classes, title in MARK.findall(svg)]


def _grid_summary(n: int, failed: set[str], missing: set[str], empty: set[str]) -> tuple[list[str], dict]:
    side = int(n ** 0.5) + 1
    names = [f"fov_{i:05d}" for i in range(n)]
    fovs = {}
    for i, name in enumerate(names):
        if name in failed or name in missing:
            continue
        x, y = (i % side) * 100.0, (i // side) * 100.0
        fovs[name] = {"features": 50 + i % 7, "spots": 0 if name in empty else 10 + i % 40,
                      "seconds": 30.0 + (i % 11) + (500.0 if i == 17 else 0.0),
                      "peak_memory_bytes": 2**30 + i * 1000,
                      "extent": {"xc": [x, x + 95.0], "yc": [y, y + 95.0]}}
    summary = {"fovs": fovs, "n_features": 55 * n, "n_spots": 30 * n,
               "targets": {f"GENE{t}": {"features": 1000 - t, "spots": 900 - t} for t in range(120)},
               "missing_fovs": sorted(missing | failed), "timings": {"merge_seconds": 12.5}}
    return names, summary


def _report(names, summary, failed) -> RunReport:
    return RunReport(
        run_id="r1", state="partial", written_at="2026-01-01T00:00:00+00:00",
        fovs=fov_rows(names, summary, None, failed),
        n_features=summary["n_features"], n_spots=summary["n_spots"], targets=summary["targets"],
        failures=[FailureRow(fov=f, headline=f"FOV {f} failed: recipe raised ValueError", log="/x.log",
                             tail=["line 1", "ValueError: bad"]) for f in sorted(failed)],
        n_failures=len(failed), commands={"resume": "starfish_workflow.py --resume r1 --results-url /r"},
    )


def test_status_of_each_fov():
    summary = {"fovs": {"a": {"spots": 4, "features": 9}, "b": {"spots": 0, "features": 3}}}
    records = {"c": {"n_passing": 0, "n_features": 0}, "d": {}}
    rows = {r.name: r for r in fov_rows(["a", "b", "c", "d", "e", "f"], summary, records, failed={"e"})}
    assert {n: r.status for n, r in rows.items()} == {
        "a": DONE, "b": EMPTY, "c": EMPTY, "d": DONE, "e": FAILED, "f": MISSING}
    assert rows["a"].spots == 4 and rows["d"].spots is None  # an output whose record was not read


def test_one_mark_per_fov_with_its_status_and_name():
    failed, missing, empty = {"fov_00003"}, {"fov_00005"}, {"fov_00001"}
    names, summary = _grid_summary(9, failed, missing, empty)
    html = render_html(_report(names, summary, failed))
    marks = _marks(html)
    assert len(marks) == 9
    by_name = {title.split(":")[0]: classes for classes, title in marks}
    assert by_name["fov_00003"] == "m failed" and by_name["fov_00005"] == "m missing"
    assert by_name["fov_00001"] == "m empty" and by_name["fov_00000"] == "m done"
    # failed and missing FOVs have no extent anywhere: drawn in the strip of unplaced FOVs
    assert "2 FOV(s) with no stage position known" in html
    assert "ValueError: bad" in html and "--resume r1" in html


def test_names_are_escaped():
    rows = fov_rows(["<script>alert(1)</script>"], {"fovs": {"<script>alert(1)</script>": {"spots": 1}}})
    html = render_html(RunReport(run_id="r", state="merged", written_at="t", fovs=rows))
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_ten_thousand_fovs_one_mark_each_within_a_few_mb():
    failed = {f"fov_{i:05d}" for i in range(0, 10_000, 997)}
    missing = {f"fov_{i:05d}" for i in range(5, 10_000, 1999)}
    empty = {f"fov_{i:05d}" for i in range(7, 10_000, 503)}
    names, summary = _grid_summary(10_000, failed, missing, empty)
    html = render_html(_report(names, summary, failed))
    assert len(html.encode()) < 3 * 2**20
    marks = _marks(html)
    assert len(marks) == 10_000
    statuses = [classes.split()[1] for classes, _ in marks]
    assert statuses.count("failed") == len(failed) and statuses.count("missing") == len(missing)
    assert statuses.count("empty") == len(empty)
    # bounded lists: 60 of 120 targets, 15 named per distribution
    assert "and 60 more targets" in html
    assert html.count("<tr><td>GENE") == 60


def test_above_max_marks_fovs_are_binned_keeping_the_worst_status():
    failed = {"fov_00042", "fov_09000"}
    names, summary = _grid_summary(10_000, failed, set(), {"fov_00100"})
    for name in failed:  # placed, so their cells must show them
        i = int(name[4:])
        summary["fovs"][name] = {"spots": 0, "extent": {"xc": [(i % 101) * 100.0, (i % 101) * 100.0 + 95],
                                                        "yc": [(i // 101) * 100.0, (i // 101) * 100.0 + 95]}}
    report = _report(names, summary, set())
    for row in report.fovs:
        if row.name in failed:
            row.status = FAILED
    html = render_html(report, max_marks=400)
    marks = _marks(html)
    assert 0 < len(marks) <= 400
    failed_cells = [title for classes, title in marks if classes == "m agg failed"]
    assert len(failed_cells) == 2 and all("1 failed" in t for t in failed_cells)
    assert sum(int(t.split(" FOVs")[0].replace(",", "")) for _, t in marks) == 10_000
    assert "binned into" in html


def test_outliers_are_named():
    names, summary = _grid_summary(200, set(), set(), set())
    rows = fov_rows(names, summary)
    top, fence = outliers(rows, lambda r: r.seconds)
    assert top[0] == (536.0, "fov_00017") and top[0][0] > fence
    assert all(v <= fence for v, _ in top[1:])
    assert "fov_00017" in render_html(RunReport(run_id="r", state="merged", written_at="t", fovs=rows))


def test_stage_extent_from_tile_documents():
    def tiles(*coords):
        return Document(url="file:///t.json", doc={"tiles": [{"coordinates": c} for c in coords]})

    primary = tiles({"xc": [10.0, 20.0], "yc": [5.0, 9.0], "zc": 0.0},
                    {"xc": [12.0, 22.0], "yc": [4.0, 8.0]})
    nuclei = tiles({"xc": [-100.0, 0.0], "yc": [0.0, 1.0]})
    assert stage_extent({"primary": primary, "nuclei": nuclei}) == {"xc": [10.0, 22.0], "yc": [4.0, 9.0]}
    assert stage_extent({"nuclei": nuclei}) == {"xc": [-100.0, 0.0], "yc": [0.0, 1.0]}
    assert stage_extent({"primary": tiles({"zc": 1.0})}) is None


def test_cost_estimate_shown_when_summary_has_one():
    rows = fov_rows(["a"], {"fovs": {"a": {"spots": 1}}})
    without = render_html(RunReport(run_id="r", state="merged", written_at="t", fovs=rows))
    assert "Cost estimate" not in without and "cost:" not in without  # a run without a bill (local): nothing
    cost = {"total_usd": 1.2345, "by_job": {"process-fov": 1.1, "merge-batch-job": 0.1345}, "basis": "on-demand"}
    html = render_html(RunReport(run_id="r", state="merged", written_at="t", fovs=rows, cost=cost))
    assert "Cost estimate" in html and "no estimate" not in html
    assert "<th>total_usd</th><td>1.234</td>" in html and "<th>by_job process-fov</th><td>1.1</td>" in html
    assert "on-demand" in html


def test_collect_takes_the_cost_and_the_failures(tmp_path):
    manifest = Manifest(run_id="r", experiment_url=str(tmp_path / "none.json"), recipe_url="r.py",
                        recipe_sha256="f" * 64, results_url=str(tmp_path), fovs=["a", "b"])
    summary = {"fovs": {"a": {"spots": 3, "features": 4}}, "n_spots": 3, "n_features": 4,
               "cost_estimate": {"total_usd": 0.5}}
    report = collect(manifest, summary=summary, records=None, state="failed", source="test",
                     failures=[FailureRow(fov="b", headline="FOV b (index 1) failed: boom; exit code 1")])
    assert report.cost == {"total_usd": 0.5}
    assert [(r.name, r.status) for r in report.fovs] == [("a", DONE), ("b", FAILED)]
    assert report.n_failures == 1 and report.recipe_sha256 == "f" * 64


def test_attempts_of_failed_batch_jobs_are_shown(tmp_path):
    manifest = Manifest(run_id="r", experiment_url=str(tmp_path / "none.json"), recipe_url="r.py",
                        recipe_sha256="f" * 64, results_url=str(tmp_path), fovs=["a", "b", "c"])
    failures = [FailureRow(fov="b", headline="FOV b (index 1) failed: OOM; exit code 137", attempts=3),
                FailureRow(fov="c", headline="FOV c (index 2) failed: boom; exit code 1", attempts=1)]
    report = collect(manifest, summary={"fovs": {"a": {"spots": 3}}}, records=None, state="failed",
                     source="test", failures=failures)
    assert [r.attempts for r in report.fovs] == [None, 3, 1]
    html = render_html(report)
    assert "known for 2 FOV(s), 4 in all; 1 FOV(s) tried more than once: b (3)" in html
    assert "exit code 137 (3 attempts)" in html


def test_a_run_just_started_is_one_mark_per_fov_in_a_compact_strip():
    names = [f"fov_{i:05d}" for i in range(10_000)]
    html = render_html(RunReport(run_id="r", state="running", written_at="t", fovs=fov_rows(names)))
    marks = _marks(html)
    assert len(marks) == 10_000 and {classes for classes, _ in marks} == {"m missing"}
    height = float(re.search(r'<svg id="fovmap"[^>]* height="([0-9.]+)"', html).group(1))
    assert height < 600 and len(html.encode()) < 2 * 2**20


def test_fovs_with_no_position_are_shaded_on_the_maps_scale_of_spots():
    """A done FOV in the strip below the map is as dark as its spots make it among every FOV's,
    never shaded against where the strip sits on the page."""
    rows = [FovRow("placed", "done", spots=200, extent=(0.0, 10.0, 0.0, 10.0)),
            FovRow("half", "done", spots=100), FovRow("most", "done", spots=200)]
    svg, _ = fov_map(rows)
    shades = dict(re.findall(r'class="m done d(\d)"[^>]*><title>(\w+):', svg)[i][::-1] for i in range(3))
    assert shades == {"placed": str(SHADES - 1), "half": str(SHADES // 2), "most": str(SHADES - 1)}
