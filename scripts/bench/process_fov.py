#!/usr/bin/env python3
"""How much the process-fov worker adds around the recipe on one full-size FOV.

Writes a synthetic 1044 x 1390 FOV (4 rounds x 4 channels, the size of the tutorial's ISS
FOVs), runs the ISS recipe on it through the real worker in a fresh process, and prints the
recipe's time beside what the worker adds: reading the manifest, the recipe and the
experiment (load), writing the table (write) and its record. Python's start and the import
of starfish, which any way of running a recipe pays, are printed apart.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from starfish_batch.core.contract import PROCESS_FOV, worker_env
from starfish_batch.demo.experiment import write_demo_experiment
from starfish_batch.launcher.executors.local import worker_command
from starfish_batch.launcher.runs import new_run

REPO = Path(__file__).resolve().parents[2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="1044x1390", help="FOV height x width (default 1044x1390)")
    parser.add_argument("--spots", type=int, default=1500)
    parser.add_argument("--recipe", default=str(REPO / "examples" / "iss_recipe.py"))
    args = parser.parse_args()
    height, width = (int(v) for v in args.shape.lower().split("x"))

    with tempfile.TemporaryDirectory(prefix="bench-process-fov-") as tmp:
        experiment = write_demo_experiment(Path(tmp) / "exp", fov_names=["bench"], shape=(height, width),
                                           n_spots=args.spots, seed=1)
        manifest, manifest_url = new_run(str(experiment), args.recipe, str(Path(tmp) / "results"),
                                         run_id="bench")

        env = {**os.environ, **worker_env(manifest_url), "AWS_BATCH_JOB_ARRAY_INDEX": "0"}
        start = time.perf_counter()
        proc = subprocess.run(worker_command(PROCESS_FOV), env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            print(proc.stderr[-2000:], file=sys.stderr)
            return 1
        record = json.loads(Path(manifest.fov_url("bench", ".json")).read_text())
        nc_size = Path(manifest.fov_url("bench", ".nc")).stat().st_size

    recipe = record["seconds_recipe"]
    around = record["seconds"] - recipe
    startup = wall - record["seconds"]
    rows = [
        ("recipe (ISS)", recipe, ""),
        ("worker: load manifest, recipe, experiment", record["seconds_load"], ""),
        (f"worker: write table ({nc_size / 1e6:.1f} MB)", record["seconds_write"], ""),
        ("overhead around the recipe", around, f"= {100 * around / recipe:.2f} % of the recipe (target < 5 %)"),
        ("python start + import starfish", startup, "(paid by any way of running a recipe)"),
    ]
    print(f"process-fov on one {height} x {width} FOV, 4 rounds x 4 channels, {record['n_features']} features")
    for label, seconds, note in rows:
        print(f"  {label:<44} {seconds:8.2f} s {note}")
    print(f"  {'peak memory':<44} {record['peak_memory_bytes'] / 2**30:8.2f} GiB, {record['cpus']} CPU(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
