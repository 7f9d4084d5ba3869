"""The launcher: ``scripts/starfish_workflow.py``. One command for a laptop and for AWS Batch.

``run`` (the default: flags alone start a run), ``estimate``, ``status RUN_ID`` and ``cancel
RUN_ID``. This module parses the command line into one ``options.Options`` and dispatches to
one module per command (``launcher.commands``); the commands it suggests next are
``launcher.hints``'s. The names other modules and tests use from here are re-exported below.
"""

from __future__ import annotations

import argparse
import sys

from starfish_batch.core import signals
from starfish_batch.core.contract import LAUNCHER as PROG
from starfish_batch.core.errors import report
from starfish_batch.launcher.commands.bills import attach_bill as _attach_bill
from starfish_batch.launcher.commands.bills import print_batch_bill as _print_batch_bill
from starfish_batch.launcher.commands.cancel import cancel
from starfish_batch.launcher.commands.estimate import estimate
from starfish_batch.launcher.commands.executors import BATCH_MIN_TIMEOUT, batch_executor, chosen_executor
from starfish_batch.launcher.commands.follow import finish_batch, follow_escalating, run_batch
from starfish_batch.launcher.commands.run import check_ground_truth, kept_text, packer, run, run_local
from starfish_batch.launcher.commands.status import status
from starfish_batch.launcher.console import RetryNotices, print_failures, say
from starfish_batch.launcher.executors.slurm import options as slurm_options
from starfish_batch.launcher.hints import (
    MAX_TRY_FOVS,
    VIA_MAKE_VAR,
    estimate_hint,
    invocation,
    new_run_hint,
    next_step_commands,
    next_steps,
    resume_hint,
)
from starfish_batch.launcher.options import Options
from starfish_batch.launcher.options import check_packing as _check_packing
from starfish_batch.launcher.options import count as _count
from starfish_batch.launcher.options import fov_names as _fov_names
from starfish_batch.launcher.options import positive_int as _positive_int
from starfish_batch.launcher.options import require as _require

__all__ = [
    "BATCH_MIN_TIMEOUT", "COMMANDS", "MAX_TRY_FOVS", "PROG", "VIA_MAKE_VAR",
    "batch_executor", "build_parser", "cancel", "check_ground_truth", "chosen_executor", "estimate",
    "estimate_hint", "finish_batch", "follow_escalating", "invocation", "kept_text", "main", "new_run_hint",
    "next_step_commands", "next_steps", "packer", "parse_args", "print_failures", "resume_hint", "run",
    "run_batch", "run_local", "say", "status", "_attach_bill", "_check_packing", "_print_batch_bill", "_require",
]

COMMANDS = ("run", "estimate", "status", "cancel")
RUNNERS = {"run": run, "estimate": estimate, "status": status, "cancel": cancel}
"""The function of each command: its flags in, its exit code out."""


def build_parser() -> argparse.ArgumentParser:
    common = _common_flags()
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run a starfish recipe on every field of view of an experiment, then merge "
        "all FOVs into merged_decoded_fovs.nc. `run` is the default command: "
        f"`{PROG} --experiment-url ... --recipe ... --results-url ...`.",
    )
    commands = parser.add_subparsers(dest="command", metavar="{run,estimate,status,cancel}")
    _run_flags(commands.add_parser("run", parents=[common], help="process every FOV, then merge (default)"))
    _estimate_flags(commands.add_parser(
        "estimate", parents=[common],
        help="process a few FOVs as the start of a new run, then predict the whole run's time, "
             "memory, cost and results size; finish the run with --resume RUN_ID"))
    status = commands.add_parser("status", parents=[common], help="how far a run got (JSON); exit 0 once merged")
    status.add_argument("run_id", metavar="RUN_ID")
    cancel = commands.add_parser("cancel", parents=[common],
                                 help="batch and slurm: cancel the jobs of a run; local: stop the launcher "
                                      "running it (as Ctrl-C does: workers stopped, outputs kept)")
    cancel.add_argument("run_id", metavar="RUN_ID")
    return parser


def _common_flags() -> argparse.ArgumentParser:
    """The flags of every command: where runs are and how to reach the executor."""
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("where runs are")
    where.add_argument("--results-url", "--results-location", dest="results_url",
                       help="where runs are written: <results-url>/<run-id>/ (local path or s3://)")
    where.add_argument("--results-bucket", help="tutorial flag: an S3 bucket (or s3:// URL) for results")
    where.add_argument("--executor", choices=("local", "batch", "slurm"), default="local")
    where.add_argument("--tf-dir", help="batch: Terraform directory to read outputs from (default: repo root)")
    where.add_argument("--tf-outputs", help="batch: a saved `terraform output -json` file")
    where.add_argument("--config-parameter", metavar="NAME",
                       help="batch: the module's SSM parameter holding its launcher_config (no Terraform "
                            "state needed; region from AWS_REGION or the profile)")
    where.add_argument("--deployment", metavar="NAME",
                       help="batch: the deployment's name (the module's name_prefix): reads the SSM "
                            "parameter /starfish-batch/NAME/launcher-config")
    where.add_argument("--quiet", action="store_true", help="no progress bar")
    where.add_argument("--prices", metavar="FILE",
                       help="batch: a price table (JSON, the shape of the bundled "
                            "starfish_batch/launcher/pricing/prices-*.json) for the bill and the estimate")
    return common


def _run_flags(run: argparse.ArgumentParser) -> None:
    run.add_argument("--experiment-url", help="experiment.json: a local path, file://, s3:// or https://")
    run.add_argument("--recipe", "--recipe-location", dest="recipe",
                     help="the recipe file defining process_fov(fov, codebook)")
    run.add_argument("--run-id", help="name of the run ([a-z0-9-], at most 64); default: UTC time + suffix")
    run.add_argument("--workers", type=_positive_int, help="local executor: FOVs at a time (default: cores and memory)")
    run.add_argument("--num-fovs", type=int, help="tutorial flag: checked against the experiment")
    run.add_argument("--job-queue", help="batch: overrides the queue from the Terraform outputs")
    run.add_argument("--no-wait", action="store_true", help="batch: submit and return")
    run.add_argument("--resume", metavar="RUN_ID", help="process only the FOVs of RUN_ID without output, then merge")
    run.add_argument("--recipe-sha256", metavar="HEX",
                     help="with --resume of a run launched elsewhere: the recipe sha256 printed at its launch "
                          "(12 hex digits or more); the resume refuses a run whose recipe is not that one")
    run.add_argument("--fovs", type=_fov_names, metavar="NAME,...",
                     help="a partial run of these FOVs alone (try a recipe, or a fix, before the whole experiment)")
    run.add_argument("--fovs-sample", type=_positive_int, metavar="K",
                     help="a partial run of K FOVs spread over the experiment")
    run.add_argument("--allow-partial", action="store_true", help="merge the FOVs that succeeded even if some failed")
    run.add_argument("--overlap", choices=("nearest", "keep-all", "take-max"),
                     help="where FOVs overlap: count each transcript once in the FOV whose centre is nearest "
                     "(nearest, the default), keep every FOV's copy (keep-all), or starfish's take-max; "
                     "recorded in the run, so a resume merges the same way")
    run.add_argument("--ground-truth", help="a ground_truth.csv to score the merged spots against")
    run.add_argument("--max-failures", type=_count, metavar="N", default=3,
                     help="stop the run when the first N FOVs to finish all fail with the same error "
                          "(default 3; 0: never)")
    run.add_argument("--max-cost", type=float, metavar="USD",
                     help="batch: cancel the run when the estimated cost of its job attempts so far "
                          "passes this many dollars (checked every minute); slurm: this many core-hours")
    run.add_argument("--fov-timeout", type=_positive_int, metavar="SECONDS",
                     help="a FOV still running after this many seconds is stopped and fails as timed out "
                          "(local: its worker and what it started are killed; batch: the job's attempt "
                          "timeout, at least 60; slurm: each job's --time, in whole minutes)")
    run.add_argument("--max-memory", type=_positive_int, metavar="MIB", default=16384,
                     help="batch and slurm: FOVs that run out of memory are resubmitted with twice the memory, "
                          "up to this many MiB (default 16384)")
    slurm_options.add_arguments(run)
    _packing_flags(run)


def _estimate_flags(quote: argparse.ArgumentParser) -> None:
    quote.add_argument("--experiment-url", help="experiment.json: a local path, file://, s3:// or https://")
    quote.add_argument("--recipe", "--recipe-location", dest="recipe", help="the recipe file")
    quote.add_argument("--run-id", help="name of the run the sample starts (default: UTC time + suffix)")
    quote.add_argument("--sample", type=_positive_int, default=3, metavar="N",
                       help="FOVs to process, spread over the experiment (default 3)")
    quote.add_argument("--workers", type=_positive_int, help="local executor: FOVs at a time in the run")
    quote.add_argument("--fov-timeout", type=_positive_int, metavar="SECONDS",
                       help="a sampled FOV still running after this many seconds fails as timed out")
    quote.add_argument("--json", action="store_true", help="the estimate as one JSON object on stdout")
    _packing_flags(quote)


def _packing_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fovs-per-job", type=_positive_int, metavar="N",
                        help="batch: FOVs each process-fov child runs in one process (default: from the run's "
                             "estimate, children of about --child-minutes; 1 without one)")
    parser.add_argument("--child-minutes", type=float, metavar="MIN", default=5.0,
                        help="batch: the length of child the default --fovs-per-job aims at (default 5)")


def parse_args(argv: list[str] | None) -> Options:
    """The flags as one ``Options``; its ``invocation`` is how to run the launcher again (as
    started, when ``argv`` is the process's own command line)."""
    invoked = invocation(sys.argv[0] if argv is None and sys.argv else None)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in (*COMMANDS, "-h", "--help"):
        argv = ["run", *argv]  # the tutorial's command line: flags alone start a run
    options = Options.from_namespace(build_parser().parse_args(argv), invoked)
    if options.results_bucket and not options.results_url:
        bucket = options.results_bucket
        options.results_url = bucket if bucket.startswith("s3://") else f"s3://{bucket}"
    return options


def main(argv: list[str] | None = None) -> int:
    RetryNotices.install()
    signals.sigterm_interrupts()  # SIGTERM stops a run as Ctrl-C does: workers stopped, resume said
    try:
        args = parse_args(argv)
        return RUNNERS.get(args.command, run)(args)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        return report(PROG, exc)


if __name__ == "__main__":
    sys.exit(main())
