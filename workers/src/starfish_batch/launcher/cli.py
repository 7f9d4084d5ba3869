"""The launcher: ``scripts/starfish_workflow.py``. One command for a laptop and for AWS Batch."""

from __future__ import annotations

import argparse
import json
import sys
import time

from starfish_batch.contract import LAUNCHER as PROG
from starfish_batch.errors import StarfishBatchError, report
from starfish_batch.manifest import Manifest

COMMANDS = ("run", "status", "cancel")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Run a starfish recipe on every field of view of an experiment, then merge "
        "all FOVs into merged_decoded_fovs.nc. Also: `status RUN_ID`, `cancel RUN_ID`.",
    )
    p.add_argument("--experiment-url", help="experiment.json: a local path, file://, s3:// or https://")
    p.add_argument("--recipe", "--recipe-location", dest="recipe",
                   help="the recipe file defining process_fov(fov, codebook)")
    p.add_argument("--results-url", "--results-location", dest="results_url",
                   help="where runs are written: <results-url>/<run-id>/ (local path or s3://)")
    p.add_argument("--results-bucket", help="tutorial flag: an S3 bucket (or s3:// URL) for results")
    p.add_argument("--executor", choices=("local", "batch"), default="local")
    p.add_argument("--run-id", help="name of the run ([a-z0-9-], at most 64); default: UTC time + suffix")
    p.add_argument("--workers", type=int, help="local executor: FOVs at a time (default: cores and memory)")
    p.add_argument("--num-fovs", type=int, help="tutorial flag: checked against the experiment")
    p.add_argument("--tf-dir", help="batch: Terraform directory to read outputs from (default: repo root)")
    p.add_argument("--tf-outputs", help="batch: a saved `terraform output -json` file")
    p.add_argument("--job-queue", help="batch: overrides the queue from the Terraform outputs")
    p.add_argument("--no-wait", action="store_true", help="batch: submit and return")
    p.add_argument("--resume", metavar="RUN_ID", help="process only the FOVs of RUN_ID without output, then merge")
    p.add_argument("--status", metavar="RUN_ID", help="show the state of a run")
    p.add_argument("--cancel", metavar="RUN_ID", help="batch: cancel the jobs of a run")
    p.add_argument("--allow-partial", action="store_true",
                   help="merge the FOVs that succeeded even if some failed")
    p.add_argument("--ground-truth", help="a ground_truth.csv to score the merged spots against")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = "run"
    if argv and argv[0] in COMMANDS:
        command = argv.pop(0)
        if command != "run":
            if not argv or argv[0].startswith("-"):
                raise StarfishBatchError(f"`{command}` needs a RUN_ID: {PROG} {command} RUN_ID ...")
            argv = [f"--{command}", argv.pop(0), *argv]
    args = build_parser().parse_args(argv)
    if args.results_bucket and not args.results_url:
        bucket = args.results_bucket
        args.results_url = bucket if bucket.startswith("s3://") else f"s3://{bucket}"
    args.command = "status" if args.status else "cancel" if args.cancel else "run"
    return args


def _require(args: argparse.Namespace, *names: str) -> None:
    missing = [f"--{n.replace('_', '-')}" for n in names if not getattr(args, n)]
    if missing:
        raise StarfishBatchError(f"missing {', '.join(missing)} (see {PROG} --help)")


def make_executor(args: argparse.Namespace):
    if args.executor == "batch":
        from starfish_batch.launcher.batch import BatchExecutor

        return BatchExecutor.from_args(args)
    from starfish_batch.launcher.local import LocalExecutor

    return LocalExecutor(workers=args.workers, progress=not args.quiet)


def resume_hint(manifest: Manifest, args: argparse.Namespace) -> str:
    return (f"{PROG} --resume {manifest.run_id} --results-url {manifest.results_url}"
            + (" --executor batch" if args.executor == "batch" else ""))


def run_local(executor, manifest: Manifest, manifest_url: str, args: argparse.Namespace,
              started: float) -> int:
    from starfish_batch.launcher.report import print_failures, print_summary

    outcome = executor.process(manifest, manifest_url)
    if outcome.interrupted:
        print(f"\ninterrupted: outputs written so far are kept under {manifest.run_root}\n"
              f"continue with: {resume_hint(manifest, args)}", file=sys.stderr)
        return 130
    if outcome.failed:
        print_failures(outcome.failed, len(manifest.fovs), manifest)
        if not args.allow_partial:
            print(f"not merging. Fix the recipe or data, then: {resume_hint(manifest, args)}",
                  file=sys.stderr)
            return 1
    code, lines = executor.merge(manifest_url, allow_partial=args.allow_partial)
    if code != 0:
        print("\n".join(lines[-20:]), file=sys.stderr)
        print(f"{PROG}: error: the merge failed (above); outputs are kept under {manifest.run_root}",
              file=sys.stderr)
        return 1
    print_summary(manifest, time.perf_counter() - started, args.ground_truth)
    return 1 if outcome.failed else 0


def run(args: argparse.Namespace) -> int:
    from starfish_batch.launcher.runs import new_run, resume_run

    started = time.perf_counter()
    executor = make_executor(args)
    preflight = getattr(executor, "preflight", None)
    if args.resume:
        _require(args, "results_url")
        manifest, manifest_url = resume_run(args.results_url, args.resume, preflight=preflight)
        print(f"resuming run {manifest.run_id}: {len(manifest.fovs)} of "
              f"{len(manifest.run_fovs)} FOVs left to process", file=sys.stderr)
    else:
        _require(args, "experiment_url", "recipe", "results_url")
        manifest, manifest_url = new_run(
            args.experiment_url, args.recipe, args.results_url,
            run_id=args.run_id, num_fovs=args.num_fovs, preflight=preflight,
        )
        print(f"run {manifest.run_id}: {len(manifest.fovs)} FOVs -> {manifest.run_root}",
              file=sys.stderr)
    if args.executor == "batch":
        return executor.launch(manifest, manifest_url, args)
    return run_local(executor, manifest, manifest_url, args, started)


def status(args: argparse.Namespace) -> int:
    from starfish_batch.launcher.runs import load_run, progress

    if args.executor == "batch":  # default results: the Terraform module's bucket
        return make_executor(args).status(args.status, args)
    _require(args, "results_url")
    state = progress(load_run(args.results_url, args.status))
    print(json.dumps(state, indent=2))
    return 0 if state["merged"] else 1


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        if args.command == "status":
            return status(args)
        if args.command == "cancel":  # only Batch runs can be cancelled (local: Ctrl-C)
            args.executor = "batch"
            return make_executor(args).cancel(args.cancel, args)
        return run(args)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        return report(PROG, exc)


if __name__ == "__main__":
    sys.exit(main())
