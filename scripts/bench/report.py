#!/usr/bin/env python3
"""Benchmark report.html: its size and how long it takes to write and to open, by number of FOVs.

    python scripts/bench/report.py [--sizes 1000,10000,50000] [--keep DIR] [--tissue-fovs 10000]
        [--tissue-transcripts 10000000]

For each N it builds summary.json's data for an N-FOV run on a square grid of the stage
(300 targets, 0.5 % of FOVs failed with a 20-line log tail, 0.2 % missing, 1 % empty, one
slow outlier) and prints

- the page's size, and how many marks its FOV map has (one per FOV up to
  ``report.MAX_MARKS``, then binned cells);
- the seconds to render it (``fov_rows`` + ``render_html``, best of three, in this process);
- where Chromium is installed (``scripts/ci/install_chromium.sh``): the seconds headless
  Chromium takes from navigation to the load event, then to a full-page screenshot, through the
  DevTools protocol (the tests' driver, ``tests/support/browser.py``).

Then the tissue (``--tissue-fovs`` FOVs, ``--tissue-transcripts`` decoded transcripts of 300
genes, 40 cells a FOV): the blocks of 65,536 rows the merge counts go through
``merge.tissue.TissueCollector`` and ``merge.cells.CellCounter``, as in the merge's pass, and
the page is written from the payload. It prints the seconds the collector adds to the merge's
pass, the seconds to write the page (payload, report_tissue.json, render, write), the page's
size and Chromium's load time, against the targets (5 MB, 10 s, 2 s).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from starfish_batch.core.report import FailureRow, RunReport, fov_rows, render_html  # noqa: E402
from starfish_batch.core.report.page import render_html as render  # noqa: E402
from starfish_batch.core.report.svg import MAX_MARKS  # noqa: E402
from starfish_batch.merge.cells import CellCounter  # noqa: E402
from starfish_batch.merge.tissue import TissueCollector  # noqa: E402


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
        from tests.support.browser import chromium, chromium_binary  # lazy: optional: playwright may be absent
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


TISSUE_TARGETS = {"page MB": 5.0, "write s": 10.0, "chromium load s": 2.0}
"""``chromium load s`` is the best of three loads after the first (a browser already running)."""
BLOCK = 65_536


def tissue_run(n_fovs: int, n_transcripts: int, out: Path) -> dict:
    """Feed the collectors as the merge does, then write the page; returns the figures."""
    import numpy as np  # lazy: numpy ~0.2 s

    rng = np.random.default_rng(0)
    side = int(np.ceil(n_fovs ** 0.5))
    names = [f"fov_{i:05d}" for i in range(n_fovs)]
    genes = [f"GENE{g:03d}" for g in range(300)] + [f"Blank-{b:02d}" for b in range(10)]
    weights = 1.0 / np.arange(1, len(genes) + 1)
    weights /= weights.sum()
    cell_names = [str(c) for c in range(1, 41)] + ["nan"]
    per_fov = n_transcripts // n_fovs
    tissue, cells = TissueCollector(), CellCounter()
    collect_s = collect_cpu = 0.0
    fov_of = np.repeat(np.arange(n_fovs), per_fov)
    for start in range(0, len(fov_of), BLOCK):
        f = fov_of[start:start + BLOCK]
        n = len(f)
        x = (f % side) * 200.0 + rng.random(n) * 190.0
        y = (f // side) * 200.0 + rng.random(n) * 190.0
        arrays = {"xc": x, "yc": y, "distance": rng.random(n).astype(np.float32)}
        data = rng.random((n, 4, 4), dtype=np.float32)
        first = int(f[0])
        fov_factor = (names[first:int(f[-1]) + 1], f - first)
        factors = {"fov": fov_factor, "target": (genes, rng.choice(len(genes), n, p=weights)),
                   "cell_id": (cell_names, rng.integers(0, len(cell_names), n))}
        decoded = rng.random(n) < 0.9
        started, cpu_started = time.perf_counter(), time.process_time()
        tissue.add_block(arrays, data, factors, decoded)
        collect_s += time.perf_counter() - started
        collect_cpu += time.process_time() - cpu_started
        cells.add_block(arrays, factors, decoded, names[int(f[-1])])  # the merge's own, for the cells
    counts = dict(zip(tissue.genes, tissue.gene_counts.tolist(), strict=True))
    fovs = {name: {"features": per_fov, "spots": int(per_fov * 0.9), "seconds": 40.0 + i % 30,
                   "extent": {"xc": [(i % side) * 200.0, (i % side) * 200.0 + 190.0],
                              "yc": [(i // side) * 200.0, (i // side) * 200.0 + 190.0]}}
            for i, name in enumerate(names)}
    summary = {"fovs": fovs, "n_features": per_fov * n_fovs, "n_spots": int(sum(counts.values())),
               "targets": {g: {"features": c, "spots": c} for g, c in counts.items()}}
    started = time.perf_counter()
    extents = {name: ((i % side) * 200.0, (i % side) * 200.0 + 190.0, (i // side) * 200.0,
                      (i // side) * 200.0 + 190.0) for i, name in enumerate(names)}
    payload = tissue.payload(extents, cells)
    (out / "report_tissue.json").write_text(json.dumps(payload))
    report = RunReport(run_id="bench-tissue", state="merged", written_at="2026-01-01T00:00:00+00:00",
                       fovs=fov_rows(names, summary), n_features=summary["n_features"],
                       n_spots=summary["n_spots"], targets=summary["targets"], tissue=payload, codebook=genes)
    path = out / "report-tissue.html"
    path.write_text(render(report), encoding="utf-8")
    write_s = time.perf_counter() - started
    browser = tissue_load_seconds(path, Path(tempfile.mkdtemp(prefix="chromium-", dir=out)))
    return {"transcripts": tissue.n_points, "points on the page": payload["points"]["n"],
            "collect s": collect_s, "collect cpu s": collect_cpu, "write s": write_s,
            "page MB": path.stat().st_size / 1e6,
            "chromium load s": browser[1] if browser else None, "path": path,
            "loads": browser}


def cpu_seconds_of_children() -> float:
    """CPU seconds (user + system) used so far by this process's descendants that still run
    (the browser's processes): what a load costs, whatever else the machine is doing."""
    parents, cpu = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    me, total = os.getpid(), 0.0
    for pid in cpu:
        p = pid
        while p in parents and p not in (0, 1, me):
            p = parents[p]
        if p == me and pid != me:
            total += cpu[pid]
    return total


def tissue_load_seconds(path: Path, tmp: Path) -> tuple[float, float, float, float] | None:
    """Chromium's first load of the page (navigation to the load event), the best of three more,
    the milliseconds the tissue map's script took (it runs after the load event), and the CPU
    seconds the browser's processes used for one load (wall time on a busy machine is more)."""
    try:
        from tests.support.browser import chromium, chromium_binary  # lazy: optional: playwright may be absent
    except ImportError:
        return None
    if chromium_binary() is None:
        return None
    try:
        with chromium(tmp) as page:
            first = page.open(path)
            again = min(page.open(path) for _ in range(3))
            before = cpu_seconds_of_children()
            page.open(path)
            deadline = time.monotonic() + 30
            while page.evaluate("typeof window.tissueMap") != "object" and time.monotonic() < deadline:
                time.sleep(0.02)
            cpu = cpu_seconds_of_children() - before
            return first, again, float(page.evaluate("tissueMap.ms")), cpu
    except BaseException as exc:  # pytest's Skipped (no websocket-client) is a BaseException
        print(f"  (browser not measured: {exc})")
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--keep", help="write the pages into this folder")
    parser.add_argument("--tissue-fovs", type=int, default=10_000)
    parser.add_argument("--tissue-transcripts", type=int, default=10_000_000)
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
        browser = browser_seconds(path, Path(tempfile.mkdtemp(prefix="chromium-", dir=out)))
        load, shot = (f"{browser[0]:.2f}", f"{browser[1]:.2f}") if browser else ("-", "-")
        print(f"{n:>8,} {len(html.encode()) / 1e6:>8.2f} {marks:>7,} {seconds:>9.3f} {load:>16} {shot:>13}",
              flush=True)
    if args.tissue_fovs:
        print(f"\nthe tissue: {args.tissue_fovs:,} FOVs, {args.tissue_transcripts:,} transcripts")
        figures = tissue_run(args.tissue_fovs, args.tissue_transcripts, out)
        print(f"  {figures['transcripts']:,} decoded transcripts; {figures['points on the page']:,} drawn one by one "
              f"over the density; page {figures['path']}")
        print(f"  the tissue collector's seconds in the merge's pass: {figures['collect s']:.2f} s "
              f"({figures['collect cpu s']:.2f} s of CPU)")
        if figures["loads"]:
            first, again, script_ms, cpu = figures["loads"]
            print(f"  chromium: first load {first:.2f} s, then best of three {again:.2f} s; the map's script "
                  f"{script_ms:.0f} ms after it; CPU of one load with the map drawn {cpu:.2f} s "
                  f"(load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
        for key, target in TISSUE_TARGETS.items():
            value = figures[key]
            shown = "-" if value is None else f"{value:.2f}"
            verdict = "" if value is None else ("ok" if value <= target else "OVER")
            print(f"  {key:<16} {shown:>8}   target <= {target:g}  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
