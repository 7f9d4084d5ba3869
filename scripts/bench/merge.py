#!/usr/bin/env python3
"""Benchmark the merge: the tutorial's method against starfish-batch's streaming merge.

    python scripts/bench/merge.py [--sizes 200,2000] [--features 3800] [--workdir DIR] [--keep]

For each N it merges N per-FOV tables of realistic size (by default 3,800 features x 4
rounds x 4 channels with the coordinates of the tutorial's ISS output; one table is built
with ``starfish_batch.testing``, its features assigned to 40 cells as starfish's
``AssignTargets`` does, and relabelled N times) with

- "tutorial": every table loaded with ``DecodedIntensityTable.open_netcdf``, then
  ``IntensityTable.concatenate_intensity_tables`` and ``to_netcdf`` (the original
  tutorial's merge job);
- "ours": ``merge-batch-job`` (``starfish_batch.merge``), which also writes the CSV of
  spots, transcripts.parquet, cells.h5ad, summary.json and qc.png.

At the largest N it also times reading the spots with pandas: ``read_parquet`` of
transcripts.parquet against ``read_csv`` of decoded_spots.csv.gz (each in a fresh process).

Each run is a fresh Python process: the wall time includes interpreter start and imports,
the peak memory is that process's VmHWM. The tutorial's method runs only up to
``--tutorial-max`` FOVs (default 200: at 2,000 it needs several GB); ``BENCH_FULL=1`` runs it
at every size and adds N=10,000 for ours.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from starfish_batch.core import storage
from starfish_batch.core.manifest import Manifest
from starfish_batch.core.records import FovRecord
from starfish_batch.demo.testing import (
    copy_fov_output,
    synthetic_decoded_table,
    with_cells,
    write_fov_table,
)

TARGET_SPEEDUP = 8.0
TARGET_RSS_RATIO = 0.25
TARGET_RSS_GROWTH = 0.10
# issue "Outputs the spatial-omics ecosystem opens directly" (Parquet and AnnData on)
TARGET_SPEEDUP_WITH_OUTPUTS = 5.0
TARGET_READ_SPEEDUP = 5.0
CELLS_PER_FOV = 40
READ_REPEAT = 2


def _cpu_seconds() -> float:
    """User + system CPU time of this process: on a shared machine, the part of the wall
    time that is the merge's own work."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _hwm_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def child(method: str, manifest_url: str) -> int:
    """One merge in this process; prints a JSON line with its peak memory and output."""
    manifest = Manifest.load(manifest_url)
    root = Path(manifest.run_root)
    if method == "ours":
        from starfish_batch.merge.job import main  # lazy: this script has its own main

        code = main(["--manifest-url", manifest_url])
        if code:
            return code
        out = root / "merged_decoded_fovs.nc"
        extra = sum((root / n).stat().st_size
                    for n in ("decoded_spots.csv.gz", "transcripts.parquet", "cells.h5ad",
                              "summary.json", "qc.png"))
    else:
        warnings.simplefilter("ignore")
        from starfish import DecodedIntensityTable, IntensityTable  # lazy: import starfish takes seconds

        tables = [DecodedIntensityTable.open_netcdf(str(root / "fovs" / f"{fov}.nc"))
                  for fov in manifest.run_fovs]
        merged = IntensityTable.concatenate_intensity_tables(tables)
        out = root / "tutorial_merged.nc"
        merged.to_netcdf(str(out))
        extra = 0
    print("BENCH " + json.dumps({"hwm_kb": _hwm_kb(), "bytes": out.stat().st_size,
                                 "extra_bytes": extra, "cpu": _cpu_seconds()}), flush=True)
    return 0


def read_child(kind: str, path: str) -> int:
    """Read the spots file ``path`` with pandas in this process; prints its rows and time."""
    import pandas as pd  # lazy: pandas ~1.8 s

    if kind == "parquet":
        # lazy: pyarrow ~0.8 s; only the parquet mode needs it
        import pyarrow.parquet  # noqa: F401  (a one-time import, as pandas' own is: not timed)
    started = time.perf_counter()
    if kind == "parquet":
        frame = pd.read_parquet(path)
    else:
        frame = pd.read_csv(path, dtype={"fov": str, "target": str}, keep_default_na=False,
                            na_values=[""])
    seconds = time.perf_counter() - started
    print("BENCH " + json.dumps({"rows": len(frame), "read_seconds": seconds,
                                 "hwm_kb": _hwm_kb(), "cpu": _cpu_seconds()}), flush=True)
    return 0


def measure_read(kind: str, path: Path, repeat: int = READ_REPEAT) -> dict:
    """The fastest of ``repeat`` reads, each in a fresh process (the machine may be shared)."""
    best = None
    for _ in range(repeat):
        proc = subprocess.run([sys.executable, __file__, "--read", kind, str(path)],
                              capture_output=True, text=True, check=False)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH ")]
        if proc.returncode or not lines:
            sys.stderr.write(proc.stderr[-3000:])
            raise SystemExit(f"bench: reading {path} failed (exit status {proc.returncode})")
        result = json.loads(lines[-1][6:])
        if best is None or result["read_seconds"] < best["read_seconds"]:
            best = result
    return {**best, "bytes": path.stat().st_size}


def make_inputs(workdir: Path, n_max: int, n_features: int) -> Path:
    """fovs/<name>.nc for n_max FOVs under workdir/fovs/ (made once), with their records."""
    fovs_dir = workdir / "fovs"
    names = [f"fov_{i:05d}" for i in range(n_max)]
    fovs_dir.mkdir(parents=True, exist_ok=True)
    first = fovs_dir / f"{names[0]}.nc"
    if not first.exists():
        table = with_cells(synthetic_decoded_table(n_features, seed=1), CELLS_PER_FOV)
        write_fov_table(table, first, names[0])
    started = time.perf_counter()
    for name in names[1:]:
        dest = fovs_dir / f"{name}.nc"
        if not dest.exists():
            copy_fov_output(first, dest, name)
    for i, name in enumerate(names):  # the record that proves each table whole, as process-fov writes it
        record = fovs_dir / f"{name}.json"
        if not record.exists() or f'"run_id": "{BENCH_RUN_ID}"' not in record.read_text():
            write_record(fovs_dir / f"{name}.nc", record, name, i)
    made = time.perf_counter() - started
    if made > 1:
        print(f"  (made {n_max} per-FOV files in {made:.0f} s)", file=sys.stderr)
    return fovs_dir


def write_record(table: Path, record_path: Path, fov: str, index: int) -> None:
    digest = storage.Digest.of_file(table)
    record = FovRecord(fov=fov, index=index, run_id=BENCH_RUN_ID, recipe_sha256=BENCH_RECIPE_SHA256,
                       n_features=0, nc_bytes=digest.size, nc_sha256=digest.sha256)
    record_path.write_text(record.to_json())


BENCH_RECIPE_SHA256 = "0" * 64
BENCH_RUN_ID = "bench"
"""Every size's run has this id (under results-<n>/): the records, shared by hard links, name it."""


def run_manifest(workdir: Path, fovs_dir: Path, n: int) -> str:
    """A run of the first n FOVs whose fovs/ links to the shared files."""
    run_id = BENCH_RUN_ID
    results = workdir / f"results-{n}"
    run_root = results / run_id
    if run_root.exists():
        shutil.rmtree(run_root)
    (run_root / "fovs").mkdir(parents=True)
    names = [f"fov_{i:05d}" for i in range(n)]
    for name in names:
        for suffix in (".nc", ".json"):
            os.link(fovs_dir / f"{name}{suffix}", run_root / "fovs" / f"{name}{suffix}")
    manifest = Manifest(run_id=run_id, experiment_url=str(workdir / "experiment.json"),
                        recipe_url=str(workdir / "recipe.py"), recipe_sha256=BENCH_RECIPE_SHA256,
                        results_url=str(results), fovs=names)
    return manifest.save()


def measure(method: str, manifest_url: str) -> dict:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", method, manifest_url],
        capture_output=True, text=True, check=False,
    )
    seconds = time.perf_counter() - started
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH ")]
    if proc.returncode or not lines:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"bench: the {method} merge failed (exit status {proc.returncode})")
    result = json.loads(lines[-1][6:])
    result["seconds"] = seconds
    result["method"] = method
    return result


def _mb(kb_or_bytes: float, unit: str) -> str:
    value = kb_or_bytes / 1024 if unit == "kb" else kb_or_bytes / 2**20
    return f"{value:,.0f} MB"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="200,2000", help="numbers of FOVs (default 200,2000)")
    p.add_argument("--features", type=int, default=3800, help="features per FOV (default 3800)")
    p.add_argument("--tutorial-max", type=int, default=200,
                   help="largest N for the tutorial's method (default 200; all with BENCH_FULL=1)")
    p.add_argument("--workdir", help="where to put the inputs and outputs (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--child", nargs=2, metavar=("METHOD", "MANIFEST"), help=argparse.SUPPRESS)
    p.add_argument("--read", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(*args.child)
    if args.read:
        return read_child(*args.read)

    full = os.environ.get("BENCH_FULL", "") not in ("", "0")
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    ours_only = [10_000] if full and 10_000 not in sizes else []
    tutorial_max = max(sizes) if full else args.tutorial_max
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench-merge-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    reads = None
    try:
        fovs_dir = make_inputs(workdir, max(sizes + ours_only), args.features)
        for n in sizes + ours_only:
            url = run_manifest(workdir, fovs_dir, n)
            print(f"N = {n}:", file=sys.stderr, flush=True)
            ours = measure("ours", url)
            print(f"  ours      {ours['seconds']:7.2f} s  (cpu {ours['cpu']:.2f} s)  "
                  f"{_mb(ours['hwm_kb'], 'kb')}", file=sys.stderr, flush=True)
            tut = None
            if n <= tutorial_max and n not in ours_only:
                tut = measure("tutorial", url)
                print(f"  tutorial  {tut['seconds']:7.2f} s  (cpu {tut['cpu']:.2f} s)  "
                      f"{_mb(tut['hwm_kb'], 'kb')}", file=sys.stderr, flush=True)
            rows.append((n, ours, tut))
            if n == max(sizes):
                run_root = Path(url).parent
                reads = (n, measure_read("csv", run_root / "decoded_spots.csv.gz"),
                         measure_read("parquet", run_root / "transcripts.parquet"))
                print(f"  read with pandas: csv {reads[1]['read_seconds']:.2f} s, "
                      f"parquet {reads[2]['read_seconds']:.2f} s", file=sys.stderr, flush=True)
            shutil.rmtree(Path(url).parent)
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    print(f"\nmerge of N per-FOV tables ({args.features} features x 4 rounds x 4 channels each)")
    header = (f"{'N':>7}  {'method':<9} {'wall s':>8} {'cpu s':>7} {'peak RSS':>10} "
              f"{'merged .nc':>11} {'time ratio':>11} {'RSS ratio':>10}")
    print(header)
    print("-" * len(header))
    for n, ours, tut in rows:
        if tut:
            print(f"{n:>7}  {'tutorial':<9} {tut['seconds']:>8.2f} {tut['cpu']:>7.2f} "
                  f"{_mb(tut['hwm_kb'], 'kb'):>10} "
                  f"{_mb(tut['bytes'], 'b'):>11} {'':>11} {'':>10}")
        speed = f"{tut['seconds'] / ours['seconds']:.1f}x" if tut else "-"
        rss = f"{ours['hwm_kb'] / tut['hwm_kb']:.2f}" if tut else "-"
        print(f"{n:>7}  {'ours':<9} {ours['seconds']:>8.2f} {ours['cpu']:>7.2f} "
              f"{_mb(ours['hwm_kb'], 'kb'):>10} "
              f"{_mb(ours['bytes'], 'b'):>11} {speed:>11} {rss:>10}")
    print("(ours also wrote decoded_spots.csv.gz, transcripts.parquet, cells.h5ad, summary.json "
          "and qc.png: "
          + ", ".join(f"N={n}: {_mb(o['extra_bytes'], 'b')}" for n, o, _ in rows) + ")")

    # The targets, each with its measured ratio, side by side.
    verdicts = []
    by_n = {n: (o, t) for n, o, t in rows}
    if 200 in by_n and by_n[200][1]:
        o, t = by_n[200]
        speed = t["seconds"] / o["seconds"]
        ratio = o["hwm_kb"] / t["hwm_kb"]
        verdicts.append((f"N=200 speedup {speed:.1f}x", f"target >= {TARGET_SPEEDUP:.0f}x",
                         speed >= TARGET_SPEEDUP,
                         f"tutorial {t['seconds']:.2f} s / ours {o['seconds']:.2f} s"))
        verdicts.append((f"N=200 peak RSS ratio {ratio:.2f}", f"target <= {TARGET_RSS_RATIO}",
                         ratio <= TARGET_RSS_RATIO,
                         f"ours {_mb(o['hwm_kb'], 'kb')} / tutorial {_mb(t['hwm_kb'], 'kb')}"))
    if 200 in by_n and 2000 in by_n:
        o200, o2000 = by_n[200][0], by_n[2000][0]
        growth = o2000["hwm_kb"] / o200["hwm_kb"] - 1
        verdicts.append((f"N=2000 peak RSS vs N=200 {growth:+.1%}",
                         f"target within {TARGET_RSS_GROWTH:.0%}", abs(growth) <= TARGET_RSS_GROWTH,
                         f"{_mb(o2000['hwm_kb'], 'kb')} / {_mb(o200['hwm_kb'], 'kb')}"))
    if reads:
        n, csv, pq = reads
        print(f"\nreading the spots of N={n} with pandas ({csv['rows']:,} rows)")
        for name, r in (("decoded_spots.csv.gz (read_csv)", csv), ("transcripts.parquet (read_parquet)", pq)):
            print(f"  {name:<36} {r['read_seconds']:>7.2f} s  (cpu {r['cpu']:.2f} s)  "
                  f"{_mb(r['bytes'], 'b'):>8} on disk  {_mb(r['hwm_kb'], 'kb'):>8} peak RSS")
    _print_targets("Merge at any scale", verdicts)
    # The same merge (Parquet and AnnData written too) against this issue's targets.
    later = []
    if 200 in by_n and by_n[200][1]:
        o, t = by_n[200]
        speed = t["seconds"] / o["seconds"]
        later.append((f"N=200 speedup with Parquet + AnnData {speed:.1f}x",
                      f"target >= {TARGET_SPEEDUP_WITH_OUTPUTS:.0f}x",
                      speed >= TARGET_SPEEDUP_WITH_OUTPUTS,
                      f"tutorial {t['seconds']:.2f} s / ours {o['seconds']:.2f} s (cpu "
                      f"{t['cpu']:.2f} s / {o['cpu']:.2f} s: {t['cpu'] / o['cpu']:.1f}x)"))
    later += [v for v in verdicts if v[0].startswith("N=2000 peak RSS")]
    if reads:
        n, csv, pq = reads
        speed = csv["read_seconds"] / pq["read_seconds"]
        later.append((f"N={n} pandas read, parquet vs csv {speed:.1f}x",
                      f"target >= {TARGET_READ_SPEEDUP:.0f}x", speed >= TARGET_READ_SPEEDUP,
                      f"csv {csv['read_seconds']:.2f} s / parquet {pq['read_seconds']:.2f} s"))
    _print_targets("Outputs the spatial-omics ecosystem opens directly", later)
    return 0


def _print_targets(issue: str, verdicts: list[tuple[str, str, bool, str]]) -> None:
    """The targets, each with its measured ratio, side by side."""
    if not verdicts:
        return
    print(f"\ntargets (issue \"{issue}\")")
    width = max(len(v[0]) for v in verdicts)
    twidth = max(len(v[1]) for v in verdicts)
    for text, target, ok, detail in verdicts:
        print(f"  {text:<{width}}  ({target}){'':<{twidth - len(target)}}  "
              f"{'OK' if ok else 'MISSED':<6}  {detail}")


if __name__ == "__main__":
    sys.exit(main())
