#!/usr/bin/env python3
"""How well ``estimate`` predicts the run it quotes, on the demo, on this machine.

    python scripts/bench/estimate.py [--fovs 12] [--size 256] [--sample 3] [--workers N]

Writes a demo experiment, runs ``starfish_workflow.py estimate --sample 3 --json`` on it (a
process, as a scientist runs it), then processes every FOV of the same experiment from
scratch in a second run with the local executor (the same workers) and compares:

- the predicted wall time of the whole experiment (``predicted_wall_seconds``, the FOV phase
  without the merge) with the measured time of that phase;
- the sample's peak memory and the recommended memory with the largest peak of any FOV.

Targets (issue 14): wall time within 30%; predicted peak at or above the real one. Each is
printed with OK or MISSED. Timings on a shared machine are noisy: run it on a quiet one.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from starfish_batch.demo.experiment import write_demo_experiment
from starfish_batch.launcher.bill import fov_records
from starfish_batch.launcher.executors.local import LocalExecutor, default_workers
from starfish_batch.launcher.runs import new_run

REPO = Path(__file__).resolve().parents[2]
TARGET_WALL_RATIO = 0.30


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fovs", type=int, default=12)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--sample", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-estimate-") as tmp:
        tmp = Path(tmp)
        experiment = write_demo_experiment(tmp / "exp", n_fovs=args.fovs, shape=(args.size, args.size))
        recipe = REPO / "examples" / "iss_recipe.py"
        workers = args.workers or default_workers(args.fovs)
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, str(REPO / "scripts" / "starfish_workflow.py"), "estimate",
             "--experiment-url", str(experiment), "--recipe", str(recipe), "--results-url", str(tmp / "a"),
             "--run-id", "quote", "--sample", str(args.sample), "--workers", str(workers), "--json", "--quiet"],
            capture_output=True, text=True, check=False)
        estimate_seconds = time.perf_counter() - started
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return 1
        quote = json.loads(proc.stdout)

        manifest, url = new_run(str(experiment), str(recipe), str(tmp / "b"), run_id="full")
        outcome = LocalExecutor(workers=workers, progress=False).process(manifest, url)
        if outcome.failed:
            print(f"the full run failed: {[f.reason for f in outcome.failed]}", file=sys.stderr)
            return 1
        peaks = {f: r.peak_memory_bytes or 0 for f, r in fov_records(manifest).items()}

    measured, predicted = outcome.seconds, quote["predicted_wall_seconds"]
    error = abs(predicted - measured) / measured
    real_peak = max(peaks.values())
    print(f"demo: {args.fovs} FOVs of {args.size}x{args.size}, {workers} workers, sample of {args.sample} "
          f"({', '.join(quote['sampled_fovs'])}); the estimate took {estimate_seconds:.1f} s")
    print(f"  wall time of the FOVs: predicted {predicted:.1f} s, measured {measured:.1f} s "
          f"({100 * error:.0f}% off; target within {100 * TARGET_WALL_RATIO:.0f}%): "
          f"{'OK' if error <= TARGET_WALL_RATIO else 'MISSED'}")
    print(f"  peak memory: sample {quote['peak_memory_bytes'] / 1e6:.0f} MB, recommended "
          f"{quote['recommended_memory_mib']} MiB, real largest {real_peak / 1e6:.0f} MB: "
          f"sample {'OK' if quote['peak_memory_bytes'] >= real_peak else 'below'}, recommendation "
          f"{'OK' if quote['recommended_memory_mib'] * 2**20 >= real_peak else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
