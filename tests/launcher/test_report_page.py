"""report.html of a real local run with a failed and an empty FOV, opened in headless Chromium."""

from __future__ import annotations

import pytest

from tests.support.browser import chromium
from tests.support.workflow import EMPTY_FOV, FAILING_WRAPPER, FOV_NAMES, launch, recipe_with, write_experiment

FAILED_FOV = "b_2"
# the page's CSS colours, as the browser computes them
COLOURS = {"failed": "rgb(211, 47, 47)", "empty": "rgb(249, 168, 37)", "missing": "rgb(158, 158, 158)"}
GREENS = {"rgb(183, 223, 185)", "rgb(129, 199, 132)", "rgb(76, 175, 80)", "rgb(46, 125, 50)", "rgb(27, 94, 32)"}


@pytest.fixture(scope="module")
def partial_run(tmp_path_factory):
    """b_2's recipe fails and C-3 has no spot; --allow-partial merges the three others."""
    tmp = tmp_path_factory.mktemp("report-run")
    experiment = write_experiment(tmp / "experiment")
    recipe = recipe_with(tmp, FAILING_WRAPPER)
    results = tmp / "results"
    proc = launch("--experiment-url", experiment, "--recipe", recipe, "--results-url", results,
                  "--run-id", "partial", "--allow-partial", env={"FAIL_FOVS": FAILED_FOV})
    assert proc.returncode == 1, proc.stderr[-3000:]
    return results / "partial", proc


def test_launcher_says_where_the_page_is(partial_run):
    root, proc = partial_run
    assert f"report: {root / 'report.html'}" in proc.stderr
    html = (root / "report.html").read_text()
    assert "synthetic failure in b_2" in html  # the error line and the log tail
    # the exact command, as the launcher prints it: a recipe error, so a new run tried on b_2 first
    assert f"--fovs {FAILED_FOV}" in html and f"--fovs {FAILED_FOV}" in proc.stderr
    assert "--resume partial" not in html


def test_page_in_chromium(partial_run, tmp_path):
    root, _ = partial_run
    page_path = root / "report.html"
    with chromium(tmp_path) as page:
        seconds = page.open(page_path)
        assert page.errors() == []
        # nothing but the page itself (its pictures are data: URIs inside it)
        assert [u for u in page.requests() if not u.startswith("data:")] == [page_path.resolve().as_uri()]
        marks = page.evaluate(
            "Array.from(document.querySelectorAll('#fovmap rect.m')).map(m => "
            "[m.querySelector('title').textContent.split(':')[0], getComputedStyle(m).fill])")
        assert sorted(name for name, _ in marks) == sorted(FOV_NAMES)
        fill = dict(marks)
        assert fill[FAILED_FOV] == COLOURS["failed"]
        assert fill[EMPTY_FOV] == COLOURS["empty"]
        assert all(fill[f] in GREENS for f in FOV_NAMES if f not in (FAILED_FOV, EMPTY_FOV)), fill
        # the map is drawn where the FOVs are: the four demo FOVs do not share one position
        boxes = page.evaluate("Array.from(document.querySelectorAll('#fovmap rect.m'))"
                              ".map(m => [m.getAttribute('x'), m.getAttribute('y')].join(','))")
        assert len(set(boxes)) == 4
        # the search box (the page's one script) finds a FOV by name
        hits = page.evaluate("(() => { const i = document.querySelector('#fovfind input'); i.value = 'b_2';"
                             "i.dispatchEvent(new Event('input'));"
                             "return document.querySelectorAll('.m.hit').length })()")
        assert hits == 1
        shot = page.screenshot(tmp_path / "report.png")
        # without JavaScript: the same marks and failures; only the search box is gone
        page.send("Emulation.setScriptExecutionDisabled", {"value": True})
        page.open(page_path)
        assert page.evaluate("document.querySelectorAll('#fovmap rect.m').length") == len(FOV_NAMES)
        assert page.evaluate("document.getElementById('fovfind').hidden") is True
        assert page.evaluate("document.body.textContent.includes('synthetic failure in b_2')") is True
    print(f"\nreport.html loaded in {seconds:.2f} s; screenshot for a person to look at: {shot}")
    assert shot.stat().st_size > 10_000
