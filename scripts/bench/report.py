#!/usr/bin/env python3
"""Benchmark report.html: its size and how long it takes to write and to open, by number of FOVs.

    python scripts/bench/report.py [--sizes 1000,10000,50000] [--keep DIR]

For each N it builds summary.json's data for an N-FOV run on a square grid of the stage
(300 targets, 0.5 % of FOVs failed with a 20-line log tail, 0.2 % missing, 1 % empty, one
slow outlier) and prints

- the page's size, and how many marks its FOV map has (one per FOV up to
  ``report.MAX_MARKS``, then binned cells);
- the seconds to render it (``fov_rows`` + ``render_html``, best of three, in this process);
- where Chromium is installed (``scripts/ci/install_chromium.sh``): the seconds headless
  Chromium takes from navigation to the load event, then to a full-page screenshot, through the
  DevTools protocol (the tests' driver, ``tests/support/browser.py``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from starfish_batch.report import FailureRow, RunReport, fov_rows, render_html  # noqa: E402
from starfish_batch.report.svg import MAX_MARKS  # noqa: E402


def synthetic(n: int) -> RunReport:
    side = int(n ** 0.5) + 1
    names = [f"fov_{i:05d}" for i in range(n)]
    failed = set(names[3::200])
    missing = set(names[7::500])
    fovs = {}
    for i, name in enumerate(names):
        if name in failed or name in missing:
            continue
        x, y = (i % side) * 200.0, (i // side) * 200.0
        fovs[name] = {"features": 3000 + i % 900, "spots": 0 if i % 100 == 11 else 1500 + (i * 37) % 1200,
                      "seconds": 40.0 + (i * 13) % 30 + (900.0 if i == 4242 % n else 0.0),
                      "peak_memory_bytes": 2**30 + (i * 7919) % 2**28,
                      "extent": {"xc": [x, x + 190.0], "yc": [y, y + 190.0]}}
    summary = {"fovs": fovs, "n_features": sum(f["features"] for f in fovs.values()),
               "n_spots": sum(f["spots"] for f in fovs.values()),
               "targets": {f"GENE{t:03d}": {"features": 10_000 - t, "spots": 9_000 - t} for t in range(300)}}
    tail = [f"  File \"recipe.py\", line {k}, in process_fov" for k in range(19)] + ["ValueError: no tiles"]
    failures = [FailureRow(fov=f, headline=f"FOV {f} failed: recipe raised ValueError: no tiles; exit code 1",
                           log=f"/results/run/logs/{f}.log", tail=tail if k < 5 else None)
                for k, f in enumerate(sorted(failed))]
    return RunReport(run_id="bench", state="partial", written_at="2026-01-01T00:00:00+00:00",
                     fovs=fov_rows(names, summary, None, failed), n_features=summary["n_features"],
                     n_spots=summary["n_spots"], targets=summary["targets"], failures=failures,
                     n_failures=len(failed), commands={"resume": "starfish-workflow --resume bench --results-url s3://b"})


def render_seconds(n: int) -> tuple[float, str]:
    best, html = float("inf"), ""
    for _ in range(3):
        started = time.perf_counter()
        html = render_html(synthetic(n))
        best = min(best, time.perf_counter() - started)
    return best, html


def browser_seconds(path: Path, tmp: Path) -> tuple[float, float] | None:
    try:
        from tests.support.browser import chromium, chromium_binary
    except ImportError:
        return None
    if chromium_binary() is None:
        return None
    try:
        with chromium(tmp) as page:
            loaded = page.open(path)
            started = time.perf_counter()
            page.screenshot(tmp / f"{path.stem}.png")
            return loaded, time.perf_counter() - started
    except BaseException as exc:  # pytest's Skipped (no websocket-client) is a BaseException
        print(f"  (browser not measured: {exc})")
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--keep", help="write the pages into this folder")
    args = parser.parse_args()
    out = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-report-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"report.html (MAX_MARKS {MAX_MARKS:,}); pages in {out}")
    print(f"{'FOVs':>8} {'size MB':>8} {'marks':>7} {'render s':>9} {'chromium load s':>16} {'screenshot s':>13}")
    for n in (int(s) for s in args.sizes.split(",")):
        seconds, html = render_seconds(n)
        path = out / f"report-{n}.html"
        path.write_text(html)
        marks = html.count('<rect class="m ')
        browser = browser_seconds(path, out / f"chromium-{n}")
        load, shot = (f"{browser[0]:.2f}", f"{browser[1]:.2f}") if browser else ("-", "-")
        print(f"{n:>8,} {len(html.encode()) / 1e6:>8.2f} {marks:>7,} {seconds:>9.3f} {load:>16} {shot:>13}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
