#!/usr/bin/env python3
"""Benchmark the merge over overlapping FOVs (issue "Overlapping FOVs: every transcript and
every cell counted once").

    python scripts/bench/overlap.py [--sizes 200,2000] [--workdir DIR]

1. Real data: the real ISS table of shared/data (the recipe's output on one whole 1390 x 1044
   px FOV) cut into 3 x 4 FOVs of 400 px overlapping by 40 px (each FOV's features are those
   inside it, less those within 3 px of its border, with a sub-pixel jitter of its own), then
   merged under each rule. Printed: transcripts that are the same molecule twice (same
   target, within 2 px in stage coordinates, from two FOVs) and the share of the whole FOV's
   transcripts found in the merged table. Without shared/data, a synthetic table is cut instead.
2. Planning: the FOV layout (neighbours, k-d tree) of 10,000 FOVs on a grid.
3. The merge at N FOVs laid on a grid overlapping by 10 % (the merge bench's tables, each
   moved to its place on the grid), ``--overlap nearest``, against the tutorial's merge of
   the same files at 200 FOVs; peak memory at each N.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import merge as merge_bench  # noqa: E402 - the merge bench's inputs and measurements

from starfish_batch.core import storage
from starfish_batch.core.contract import LAYOUT_NAME
from starfish_batch.core.layout import FovLayout, decide
from starfish_batch.core.manifest import Manifest, sha256_hex
from starfish_batch.demo.testing import open_table, synthetic_decoded_table
from starfish_batch.demo.tiling import cut, duplicates, grid_extents, recall, write_tiled_run
from starfish_batch.merge.job import merge_run

REPO = Path(__file__).resolve().parents[2]
ISS = [REPO.parent / "shared" / "data" / "iss_fov_decoded.nc", Path("/work/shared/data/iss_fov_decoded.nc")]
TARGET_DUPLICATES = 0.01
TARGET_RECALL = 0.95
TARGET_SPEEDUP = 5.0
TARGET_RSS_GROWTH = 0.10
TARGET_PLAN_SECONDS = 1.0


def real_data(workdir: Path) -> list[tuple]:
    import pandas as pd  # lazy: pandas ~1.8 s

    path = next((p for p in ISS if p.is_file()), None)
    if path is not None:
        whole = open_table(str(path))
        whole = whole.assign_coords(xc=("features", whole.coords["x"].values.astype(float)),
                                    yc=("features", whole.coords["y"].values.astype(float)))
        what = f"the real ISS table {path} (1390 x 1044 px)"
    else:
        whole = synthetic_decoded_table(3800, seed=7, um_per_px=1.0)
        what = "a synthetic table (shared/data is not on this machine)"
    whole_df = pd.DataFrame({"target": whole.coords["target"].values.astype(str),
                             "passes_thresholds": whole.coords["passes_thresholds"].values,
                             "xc": whole.coords["xc"].values, "yc": whole.coords["yc"].values})
    ext = grid_extents((3, 4), tile=400, overlap=40)
    tables = cut(whole, ext, edge=3.0, seed=1)
    print(f"\nreal data: {what} cut into 3 x 4 FOVs of 400 px overlapping by 40 px")
    print(f"  whole FOV: {len(whole_df[whole_df['passes_thresholds'].astype(bool)])} decoded transcripts; "
          f"the 12 FOVs: {sum(int(t.sizes['features']) for t in tables.values())} features in all")
    rows = []
    for rule in ("keep-all", "take-max", "nearest"):
        manifest = write_tiled_run(str(workdir / "real"), tables, ext, run_id=rule, overlap=rule)
        merge_run(manifest)
        got = pd.read_csv(Path(manifest.run_root) / "decoded_spots.csv.gz", dtype={"fov": str, "target": str},
                          keep_default_na=False, na_values=[""])
        dup = duplicates(got) / max(len(got), 1)
        rec = recall(whole_df, got)
        print(f"  --overlap {rule:<9} {len(got):>6} transcripts merged, {dup:6.2%} the same molecule twice, "
              f"{rec:6.2%} of the whole FOV's found")
        rows.append((rule, dup, rec))
    return rows


def planning() -> float:
    ext = grid_extents((100, 100), tile=2048, overlap=205, um_per_px=0.108)
    best = None
    for _ in range(3):
        started = time.perf_counter()
        layout = FovLayout.build(list(ext), ext, 0.108)
        decide(None, layout)
        seconds = time.perf_counter() - started
        best = seconds if best is None else min(best, seconds)
    print(f"\nplanning: the layout of 10,000 FOVs (100 x 100, 10 % overlap) in {best:.3f} s")
    return best


def place_on_grid(fovs_dir: Path, names: list[str], run_root: Path) -> dict[str, list[float]]:
    """Each FOV's table moved to its place on a grid overlapping by 10 % (its own copy in the
    run), and the grid's extents."""
    import netCDF4  # lazy: netCDF4 ~1.4 s
    import numpy as np  # lazy: numpy ~0.2 s

    width, height = 1390 * 0.1, 1044 * 0.1  # the bench table: 1390 x 1044 px at 0.1 um
    cols = int(np.ceil(np.sqrt(len(names))))
    extents = {}
    for i, name in enumerate(names):
        r, c = divmod(i, cols)
        ox, oy = c * width * 0.9, r * height * 0.9
        dest = run_root / "fovs" / f"{name}.nc"
        shutil.copyfile(fovs_dir / f"{name}.nc", dest)
        with netCDF4.Dataset(str(dest), "r+") as ds:
            ds.variables["xc"][:] = ds.variables["xc"][:] + ox
            ds.variables["yc"][:] = ds.variables["yc"][:] + oy
        merge_bench.write_record(dest, run_root / "fovs" / f"{name}.json", name)
        extents[name] = [ox, ox + width, oy, oy + height]
    return extents


def overlap_manifest(workdir: Path, fovs_dir: Path, n: int) -> str:
    results = workdir / "results"
    run_root = results / f"overlap-{n}"
    shutil.rmtree(run_root, ignore_errors=True)
    (run_root / "fovs").mkdir(parents=True)
    names = [f"fov_{i:05d}" for i in range(n)]
    extents = place_on_grid(fovs_dir, names, run_root)
    layout = FovLayout.build(names, extents, 0.1).to_json().encode()
    storage.write_bytes(str(run_root / LAYOUT_NAME), layout)
    manifest = Manifest(run_id=f"overlap-{n}", experiment_url=str(workdir / "experiment.json"),
                        recipe_url=str(workdir / "recipe.py"), recipe_sha256=merge_bench.BENCH_RECIPE_SHA256,
                        results_url=str(results), fovs=names, overlap="nearest",
                        layout_sha256=sha256_hex(layout))
    return manifest.save()


def merge_speed(workdir: Path, sizes: list[int], features: int) -> dict[int, tuple]:
    fovs_dir = merge_bench.make_inputs(workdir, max(sizes), features)
    out = {}
    for n in sizes:
        url = overlap_manifest(workdir, fovs_dir, n)
        ours = merge_bench.measure("ours", url)
        summary = json.loads((Path(url).parent / "summary.json").read_text())
        tut = merge_bench.measure("tutorial", url) if n == 200 else None
        print(f"  N = {n}: ours {ours['seconds']:.2f} s (cpu {ours['cpu']:.2f} s) "
              f"{ours['hwm_kb'] / 1024:,.0f} MB, {summary['overlap']['transcripts_dropped']:,} transcripts "
              f"dropped as a neighbour's"
              + (f"; tutorial {tut['seconds']:.2f} s (cpu {tut['cpu']:.2f} s) {tut['hwm_kb'] / 1024:,.0f} MB"
                 if tut else ""), flush=True)
        out[n] = (ours, tut)
        shutil.rmtree(Path(url).parent)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="200,2000", help="numbers of FOVs for the merge (default 200,2000)")
    p.add_argument("--features", type=int, default=3800)
    p.add_argument("--workdir", help="where to put inputs and outputs (default: a temp dir, removed)")
    args = p.parse_args(argv)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench-overlap-"))
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    verdicts = []
    try:
        rows = real_data(workdir)
        rule, dup, rec = rows[-1]
        verdicts.append((f"real data, nearest: duplicates {dup:.2%}", f"target <= {TARGET_DUPLICATES:.0%}",
                         dup <= TARGET_DUPLICATES))
        verdicts.append((f"real data, nearest: recall {rec:.2%}", f"target >= {TARGET_RECALL:.0%}",
                         rec >= TARGET_RECALL))
        plan = planning()
        verdicts.append((f"layout of 10,000 FOVs {plan:.3f} s", f"target < {TARGET_PLAN_SECONDS:g} s",
                         plan < TARGET_PLAN_SECONDS))
        print("\nmerge over FOVs on a grid overlapping by 10 % (--overlap nearest)")
        speeds = merge_speed(workdir, sizes, args.features)
        if 200 in speeds and speeds[200][1]:
            o, t = speeds[200]
            s = t["seconds"] / o["seconds"]
            verdicts.append((f"N=200 speedup {s:.1f}x (cpu {t['cpu'] / o['cpu']:.1f}x)",
                             f"target >= {TARGET_SPEEDUP:.0f}x", s >= TARGET_SPEEDUP))
        if 200 in speeds and 2000 in speeds:
            g = speeds[2000][0]["hwm_kb"] / speeds[200][0]["hwm_kb"] - 1
            verdicts.append((f"N=2000 peak RSS vs N=200 {g:+.1%}", f"target within {TARGET_RSS_GROWTH:.0%}",
                             abs(g) <= TARGET_RSS_GROWTH))
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    print("\ntargets (issue \"Overlapping FOVs: every transcript and every cell counted once\")")
    width = max(len(v[0]) for v in verdicts)
    for text, target, ok in verdicts:
        print(f"  {text:<{width}}  ({target})  {'OK' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
