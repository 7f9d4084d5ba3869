#!/usr/bin/env python3
"""Write the synthetic ISS-like demo experiment (SpaceTx format) and its ground truth.

    python scripts/demo/make_demo_experiment.py OUT_DIR [--fovs A1 A2 B1 B2] [--seed 0]
        [--empty-fovs B2] [--spots 60] [--size 256]

Writes OUT_DIR/experiment.json (with its images and codebook) and OUT_DIR/ground_truth.csv,
then prints the path of experiment.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    from starfish_batch.demo.experiment import write_demo_experiment
except ImportError:  # run from a checkout without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "workers" / "src"))
    from starfish_batch.demo.experiment import write_demo_experiment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", help="directory to write the experiment into")
    parser.add_argument(
        "--fovs", nargs="+", metavar="NAME", default=None,
        help="FOV names (default: A1 A2 B1 B2, or --n-fovs of that pattern)",
    )
    parser.add_argument("--n-fovs", type=int, default=4, help="FOV count when --fovs is not given")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--spots", type=int, default=60, help="spots per FOV (default 60)")
    parser.add_argument(
        "--size", type=int, default=256, help="tile height and width in pixels (default 256)"
    )
    parser.add_argument(
        "--empty-fovs", nargs="*", metavar="NAME", default=(),
        help="FOVs to leave without any spot",
    )
    args = parser.parse_args(argv)
    if args.n_fovs < 1:
        parser.error("--n-fovs must be at least 1")
    if args.size < 32:
        parser.error("--size must be at least 32")
    try:
        path = write_demo_experiment(
            args.out_dir,
            fov_names=args.fovs,
            n_fovs=args.n_fovs,
            shape=(args.size, args.size),
            n_spots=args.spots,
            empty_fovs=args.empty_fovs,
            seed=args.seed,
        )
    except ValueError as exc:
        print(f"make_demo_experiment: {exc}", file=sys.stderr)
        return 2
    print(path.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
