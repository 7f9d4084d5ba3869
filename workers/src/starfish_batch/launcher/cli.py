"""The launcher: ``scripts/starfish_workflow.py``. One command for a laptop and for AWS Batch.

``run`` (the default: flags alone start a run), ``status RUN_ID`` and ``cancel RUN_ID``. This
is the only module that sees argparse's ``Namespace``: it turns flags into the executors'
arguments, prints what they return (through ``report``), suggests the next command and
chooses the exit code, for both executors alike.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time

from starfish_batch import printable, signals, storage
from starfish_batch.contract import LAUNCHER as PROG
from starfish_batch.contract import MAX_LOG_TAILS, MERGE, MERGED_NAME, PROCESS_FOV
from starfish_batch.errors import StarfishBatchError, report
from starfish_batch.launcher.outcome import Failure
from starfish_batch.launcher.report import failed_fovs_line, print_failures, say, stopped_early_line
from starfish_batch.launcher.run_page import write_page
from starfish_batch.launcher.slurm import options as slurm_options
from starfish_batch.manifest import Manifest

COMMANDS = ("run", "estimate", "status", "cancel")
BATCH_MIN_TIMEOUT = 60  # AWS Batch refuses an attemptDurationSeconds below 60
VIA_MAKE_VAR = "STARFISH_BATCH_VIA_MAKE"  # set by `make run`: the commands we suggest are `make run ...`


def _whole_number(least: int):
    """An argparse type: a whole number of at least ``least``, else argparse's one-line error."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"{value}: give {'at least 1' if least == 1 else f'{least} or more'}")
        return value
    return parse


_positive_int = _whole_number(1)
_count = _whole_number(0)


def _fov_names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give FOV names separated by commas")
    return names


def build_parser() -> argparse.ArgumentParser:
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
                            "starfish_batch/pricing/prices-*.json) for the bill and the estimate")

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run a starfish recipe on every field of view of an experiment, then merge "
        "all FOVs into merged_decoded_fovs.nc. `run` is the default command: "
        f"`{PROG} --experiment-url ... --recipe ... --results-url ...`.",
    )
    commands = parser.add_subparsers(dest="command", metavar="{run,estimate,status,cancel}")
    run = commands.add_parser("run", parents=[common], help="process every FOV, then merge (default)")
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
    quote = commands.add_parser(
        "estimate", parents=[common],
        help="process a few FOVs as the start of a new run, then predict the whole run's time, "
             "memory, cost and results size; finish the run with --resume RUN_ID")
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
    status = commands.add_parser("status", parents=[common], help="how far a run got (JSON); exit 0 once merged")
    status.add_argument("run_id", metavar="RUN_ID")
    cancel = commands.add_parser("cancel", parents=[common],
                                 help="batch and slurm: cancel the jobs of a run; local: stop the launcher "
                                      "running it (as Ctrl-C does: workers stopped, outputs kept)")
    cancel.add_argument("run_id", metavar="RUN_ID")
    return parser


def _packing_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fovs-per-job", type=_positive_int, metavar="N",
                        help="batch: FOVs each process-fov child runs in one process (default: from the run's "
                             "estimate, children of about --child-minutes; 1 without one)")
    parser.add_argument("--child-minutes", type=float, metavar="MIN", default=5.0,
                        help="batch: the length of child the default --fovs-per-job aims at (default 5)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The flags; ``invocation`` is how to run the launcher again (as started, when ``argv`` is
    the process's own command line)."""
    invoked = invocation(sys.argv[0] if argv is None and sys.argv else None)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in (*COMMANDS, "-h", "--help"):
        argv = ["run", *argv]  # the tutorial's command line: flags alone start a run
    args = build_parser().parse_args(argv)
    args.invocation = invoked
    if args.results_bucket and not args.results_url:
        bucket = args.results_bucket
        args.results_url = bucket if bucket.startswith("s3://") else f"s3://{bucket}"
    return args


def _require(args: argparse.Namespace, *names: str) -> None:
    missing = [f"--{n.replace('_', '-')}" for n in names if not getattr(args, n)]
    if missing:
        raise StarfishBatchError(f"missing {', '.join(missing)} (see {PROG} run --help)")


# -- the commands we suggest: complete, so that they work when pasted ---------------------------

def invocation(argv0: str | None) -> str:
    """The launcher as this process was started (``python scripts/starfish_workflow.py``, or the
    ``starfish-workflow`` console script), so that a command we print runs when pasted."""
    if not argv0:
        return PROG
    if argv0.endswith(".py"):
        return f"{shlex.quote(sys.executable)} {shlex.quote(argv0)}"
    return shlex.quote(argv0)


def _tf_flags(args: argparse.Namespace) -> str:
    """The flags that find the same Terraform outputs again."""
    if args.tf_outputs:
        return f" --tf-outputs {shlex.quote(args.tf_outputs)}"
    if args.config_parameter:
        return f" --config-parameter {shlex.quote(args.config_parameter)}"
    if args.deployment:
        return f" --deployment {shlex.quote(args.deployment)}"
    if args.tf_dir:
        return f" --tf-dir {shlex.quote(args.tf_dir)}"
    return ""


def _where(args: argparse.Namespace, results_url: str) -> str:
    batch = f"{_tf_flags(args)} --executor batch" if args.executor == "batch" else ""
    if args.executor == "slurm":
        batch = " --executor slurm"
    return f"--results-url {shlex.quote(results_url)}{batch}"


def _slurm_flags(args: argparse.Namespace) -> str:
    """``--executor slurm`` and the Slurm flags this run used, for a command we print."""
    flags = slurm_options.from_args(args).flags() if args.command == "run" else ""
    return f" --executor slurm{' ' + flags if flags else ''}"


def _via_make() -> bool:
    return os.environ.get(VIA_MAKE_VAR) == "1"


def _make_command(args: argparse.Namespace, target: str = "run", **variables: str) -> str:
    """``make run VAR=value ...`` with the executor and Terraform flags this run used."""
    if args.executor == "batch":
        variables["EXECUTOR"] = "batch"
        if _tf_flags(args):
            variables["RUN_ARGS"] = _tf_flags(args).strip()
    if args.executor == "slurm":
        variables["EXECUTOR"] = "slurm"
        flags = _slurm_flags(args).replace(" --executor slurm", "", 1).strip()
        if flags:
            variables["RUN_ARGS"] = flags
    return f"make {target} " + " ".join(f"{k}={shlex.quote(v)}" for k, v in variables.items())


def resume_hint(manifest: Manifest, args: argparse.Namespace) -> str:
    """The command that processes what is left of this run with its own recipe, then merges."""
    if _via_make():
        return _make_command(args, RESUME=manifest.run_id, RESULTS=manifest.results_url)
    batch = args.executor == "batch"
    if args.executor == "slurm":
        return (f"{args.invocation}{_slurm_flags(args)} --resume {manifest.run_id} "
                f"--results-url {shlex.quote(manifest.results_url)}")
    return (f"{args.invocation}{' --executor batch' if batch else ''} --resume {manifest.run_id} "
            f"--results-url {shlex.quote(manifest.results_url)}{_tf_flags(args) if batch else ''}")


def new_run_hint(manifest: Manifest, args: argparse.Namespace, fovs: list[str] | None = None) -> str:
    """The command that runs a fixed recipe over the same experiment, as a new run (of ``fovs``
    alone, when given: a partial run that tries the fix first). The recipe is the file the run was
    started from (fixed in place), not the run's own copy."""
    recipe = getattr(args, "recipe", None) or manifest.recipe_source or manifest.recipe_url
    if _via_make():
        extra = {"FOVS": ",".join(fovs)} if fovs else {}
        return _make_command(args, EXPERIMENT=manifest.experiment_url, RECIPE=recipe,
                             RESULTS=manifest.results_url, **extra)
    batch = args.executor == "batch"
    only = f" --fovs {shlex.quote(','.join(fovs))}" if fovs else ""
    if args.executor == "slurm":
        return (f"{args.invocation}{_slurm_flags(args)} --experiment-url {shlex.quote(manifest.experiment_url)} "
                f"--recipe {shlex.quote(recipe)} --results-url {shlex.quote(manifest.results_url)}{only}")
    return (f"{args.invocation}{' --executor batch' if batch else ''} "
            f"--experiment-url {shlex.quote(manifest.experiment_url)} --recipe {shlex.quote(recipe)} "
            f"--results-url {shlex.quote(manifest.results_url)}{only}{_tf_flags(args) if batch else ''}")


def estimate_hint(manifest: Manifest, args: argparse.Namespace) -> str:
    """The command that estimates again, as a new run, with the recipe file the user gave."""
    recipe = getattr(args, "recipe", None) or manifest.recipe_source or manifest.recipe_url
    if _via_make():
        return _make_command(args, "estimate", EXPERIMENT=manifest.experiment_url, RECIPE=recipe,
                             RESULTS=manifest.results_url, SAMPLE=str(args.sample))
    batch = args.executor == "batch"
    return (f"{args.invocation} estimate{' --executor batch' if batch else ''} "
            f"--experiment-url {shlex.quote(manifest.experiment_url)} --recipe {shlex.quote(recipe)} "
            f"--results-url {shlex.quote(manifest.results_url)} --sample {args.sample}"
            f"{_tf_flags(args) if batch else ''}")


MAX_TRY_FOVS = 5
"""The failed FOVs a `--fovs` try of a fixed recipe names (the first ones; enough to see the fix work)."""


def _try_fovs(failures) -> list[str] | None:
    """The failed FOVs to try a fixed recipe on first, or None when they cannot be named in --fovs."""
    names = [f.fov for f in failures if f.fov is not None and f.is_recipe_error][:MAX_TRY_FOVS]
    # a name a command line cannot carry as typed (a comma, spaces at its ends, control characters)
    if not names or any("," in n or n != n.strip() or printable.escape(n) != n for n in names):
        return None
    return names


def next_step_commands(failures, manifest: Manifest, args: argparse.Namespace) -> list[tuple[str, str]]:
    """What to do after failed FOVs, as (what it is for, command): a recipe bug needs a new run (a
    resume reruns the run's own recipe), tried first on the FOVs it failed on; a resume only for
    causes outside the recipe (data, network, machine), fixed where they are. The terminal and
    report.html show the same commands."""
    if not any(f.is_recipe_error for f in failures):
        return [("fix the data or the cause above, then process what is left", resume_hint(manifest, args))]
    steps = []
    tried = _try_fovs(failures)
    if tried:
        steps.append((f"after fixing the recipe, try it on the FOV(s) it failed on ({', '.join(tried)})",
                      new_run_hint(manifest, args, tried)))
    steps.append(("then run the fixed recipe on the whole experiment, as a new run" if tried else
                  "after fixing the recipe, start a new run", new_run_hint(manifest, args)))
    if not all(f.is_recipe_error for f in failures):
        steps.append(("for the FOVs that failed for a cause outside the recipe, process what is left",
                      resume_hint(manifest, args)))
    return steps


def next_steps(failures, manifest: Manifest, args: argparse.Namespace) -> str:
    recipe = [f for f in failures if f.is_recipe_error]
    lines = []
    if recipe:
        names = ", ".join(printable.line(f.fov or "?") for f in recipe[:5]) + (" ..." if len(recipe) > 5 else "")
        lines.append(f"The recipe raised an error on {len(recipe)} FOV(s) ({names}). A resume reruns this run's "
                     "own recipe, so start a new run for a fixed one.")
    for purpose, command in next_step_commands(failures, manifest, args):
        lines.append(f"{purpose[0].upper()}{purpose[1:]}:\n  {command}")
    return "\n".join(lines)


# -- run ------------------------------------------------------------------------------------------

def batch_executor(args: argparse.Namespace):
    """The Batch executor and the results URL (default: the module's bucket), from the flags and
    the Terraform outputs (read now: a clear error if absent)."""
    from starfish_batch.launcher.batch import BatchExecutor
    from starfish_batch.launcher.tf_outputs import read_outputs

    outputs = read_outputs(args.tf_dir, args.tf_outputs, args.config_parameter, args.deployment)
    if getattr(args, "allow_partial", False):
        raise StarfishBatchError(
            "--allow-partial applies to the local executor; on AWS Batch a failed FOV stops "
            "the merge: fix the recipe or data, then --resume RUN_ID"
        )
    storage.use_region(outputs.region)  # for a machine with no AWS region configured
    timeout = getattr(args, "fov_timeout", None)
    if timeout is not None and timeout < BATCH_MIN_TIMEOUT:
        raise StarfishBatchError(f"--fov-timeout {timeout}: AWS Batch's attempt timeout is at least "
                                 f"{BATCH_MIN_TIMEOUT} seconds; give {BATCH_MIN_TIMEOUT} or more")
    executor = BatchExecutor(outputs, getattr(args, "job_queue", None), fov_timeout=timeout)
    if args.results_url:
        return executor, args.results_url
    from starfish_batch.launcher.results_home import default_results_url

    return executor, default_results_url(executor)  # the caller's own folder, when the module scopes writes


def chosen_executor(args: argparse.Namespace):
    """(Batch executor or None for local, results URL, preflight or None) for starting a run:
    on Batch the preflight checks the queue and outputs before anything is written."""
    if args.executor == "slurm":
        from starfish_batch.launcher.slurm.run import executor_from

        slurm = executor_from(args)

        def check(manifest: Manifest) -> None:
            for warning in slurm.preflight(manifest):
                say(warning)

        return slurm, args.results_url, check
    if args.executor != "batch":
        return None, args.results_url, None
    executor, results_url = batch_executor(args)

    def preflight(manifest: Manifest) -> None:
        for warning in executor.preflight(manifest):
            say(warning)

    return executor, results_url, preflight


def run_local(manifest: Manifest, manifest_url: str, args: argparse.Namespace, started: float) -> int:
    from starfish_batch.launcher.bill import local_bill
    from starfish_batch.launcher.local import LocalExecutor
    from starfish_batch.launcher.report import print_interrupted, print_summary

    executor = LocalExecutor(workers=args.workers, progress=not args.quiet, max_failures=args.max_failures,
                             fov_timeout=args.fov_timeout)
    outcome = executor.process(manifest, manifest_url)
    if outcome.interrupted:
        print_interrupted(manifest, resume_hint(manifest, args))
        write_page(manifest, "interrupted", outcome.failed, {"continue the run": resume_hint(manifest, args)})
        return 130
    if outcome.stopped_early:
        for failure in outcome.failed[MAX_LOG_TAILS:]:
            failure.tail = None
        say()
        print_failures(outcome.failed)
        say(stopped_early_line(outcome.stopped_early, outcome.failed,
                               f"{len(outcome.not_started)} FOVs were not started")
            + f"; outputs written are kept under {manifest.run_root}\n"
            + next_steps(outcome.failed, manifest, args))
        write_page(manifest, "failed", outcome.failed, dict(next_step_commands(outcome.failed, manifest, args)))
        return 1
    if outcome.failed:
        for failure in outcome.failed[MAX_LOG_TAILS:]:
            failure.tail = None
        say()
        print_failures(outcome.failed)
        say(f"\n{failed_fovs_line(outcome.failed, len(manifest.fovs))}; {kept_text(manifest)}")
        if not args.allow_partial:
            say(f"not merging.\n{next_steps(outcome.failed, manifest, args)}")
            write_page(manifest, "failed", outcome.failed, dict(next_step_commands(outcome.failed, manifest, args)))
            return 1
    try:
        code, lines = executor.merge(manifest, manifest_url, allow_partial=args.allow_partial)
    except KeyboardInterrupt:
        print_interrupted(manifest, resume_hint(manifest, args))
        return 130
    if code != 0:
        tail = printable.bounded_tail(lines[-20:])
        say("\n".join(tail))
        say(f"{PROG}: error: the merge failed (above); outputs are kept under {manifest.run_root}")
        merge_failure = Failure(None, None, "merge-batch-job exited with an error", code, tail=tail)
        write_page(manifest, "failed", [*outcome.failed, merge_failure], {"retry": resume_hint(manifest, args)})
        return 1
    _attach_bill(manifest, lambda: local_bill(manifest))
    print_summary(manifest, time.perf_counter() - started, args.ground_truth, processed=len(outcome.succeeded))
    if outcome.failed:  # merged without them (--allow-partial): what to do about them, as for any failure
        say(next_steps(outcome.failed, manifest, args))
    write_page(manifest, "partial" if outcome.failed else "merged", outcome.failed,
               dict(next_step_commands(outcome.failed, manifest, args)) if outcome.failed else None)
    return 1 if outcome.failed else 0


def kept_text(manifest: Manifest) -> str:
    """Which outputs a failed pass keeps: every FOV of the run that has one, this pass's or earlier."""
    from starfish_batch.launcher.runs import completed_fovs

    done = len(completed_fovs(manifest))
    where = storage.join(manifest.run_root, "fovs")
    if not done:
        return f"no FOV of the run has an output yet (under {where})"
    return f"the outputs of the {done} FOV(s) of the run that succeeded are kept under {where}"


def _attach_bill(manifest: Manifest, make_bill) -> dict | None:
    """Add the run's bill to its summary.json; a bill that cannot be made is a warning, not a
    failed run (the results are there)."""
    from starfish_batch.launcher.bill import attach_bill

    try:
        bill = make_bill()
        attach_bill(manifest, bill)
        return bill.to_dict()
    except StarfishBatchError as exc:
        say(f"warning: no bill for run {manifest.run_id}: {exc}")
        return None


def run_batch(executor, manifest: Manifest, manifest_url: str, args: argparse.Namespace,
              results_url: str) -> int:
    from starfish_batch.launcher.report import BatchProgress, submitted_text

    observer = BatchProgress(enabled=not args.quiet)
    run = executor.submit(manifest, manifest_url, observer)
    say(submitted_text(run))
    if args.no_wait:
        print(f"run_id {run.run_id}")
        for job in run.process_jobs:
            print(f"{PROCESS_FOV} {job.job_id}")
        print(f"{MERGE} {run.merge_job_id}", flush=True)
        return 0
    manifest, run, outcome = follow_escalating(executor, manifest, run, observer, args, results_url)
    return finish_batch(outcome, manifest, run, args, results_url, executor)


def follow_escalating(executor, manifest: Manifest, run, observer, args: argparse.Namespace,
                      results_url: str):
    """Follow a run; when every failed FOV ran out of memory, resubmit just those FOVs as one
    array with twice the memory (up to --max-memory) and a new merge, and follow that."""
    from starfish_batch.launcher.batch.escalate import next_size
    from starfish_batch.launcher.runs import resume_run

    prices = None
    if args.max_cost is not None:
        from starfish_batch.pricing import PriceTable

        prices = PriceTable.load(args.prices)
    limits = {"max_failures": args.max_failures, "max_cost": args.max_cost, "prices": prices}
    outcome = executor.follow(manifest, run, observer, **limits)
    while (outcome.state == "fovs_failed" and outcome.failures
           and all(f.out_of_memory for f in outcome.failures)):
        current = run.resources or executor.job_size(executor.outputs.process_fov_job_definition_arn)
        fargate = executor.compute_environment()["type"].startswith("FARGATE")
        size = next_size(current, args.max_memory, fargate)
        names = ", ".join(printable.line(f.fov or "?") for f in outcome.failures)
        if size is None:
            say(f"{len(outcome.failures)} FOV(s) ran out of memory with {int(current['memory_mib'])} MiB "
                f"({names}), the --max-memory cap of {args.max_memory} MiB: not resubmitted")
            break
        manifest, url = resume_run(results_url, manifest.run_id, only=[f.fov for f in outcome.failures],
                                   fovs_per_job=manifest.fovs_per_job)
        run = executor.submit(manifest, url, observer, resources=size,
                              escalated_from={f.fov: f.job_id for f in outcome.failures})
        say(f"{len(outcome.failures)} FOV(s) ran out of memory with {int(current['memory_mib'])} MiB "
            f"({names}): resubmitted with {size['vcpus']:g} vCPU and {size['memory_mib']} MiB as job "
            f"{run.process_jobs[0].job_id}, then a new merge (recorded in {run.jobs_url})")
        outcome = executor.follow(manifest, run, observer, **limits)
    return manifest, run, outcome


def finish_batch(outcome, manifest: Manifest, run, args: argparse.Namespace, results_url: str,
                 executor=None) -> int:
    """What the end of following a Batch run says, and its exit code."""
    merged = storage.join(manifest.run_root, MERGED_NAME)
    if outcome.state == "merged":
        print(f"merged: {merged}", flush=True)
        if executor is not None:
            _print_batch_bill(executor, manifest, args)
        write_page(manifest, "merged")
        return 0
    if outcome.state == "merged_file_missing":
        say(f"{PROG}: error: the merge job succeeded but {merged} does not exist")
        write_page(manifest, "failed")
        return 1
    if outcome.state == "merge_failed":
        print_failures([outcome.merge_failure])
        say(f"{PROG}: error: the merge failed; outputs are kept under {manifest.run_root}; "
            f"retry with: {resume_hint(manifest, args)}")
        write_page(manifest, "failed", [outcome.merge_failure], {"retry": resume_hint(manifest, args)})
        return 1
    if outcome.state == "stopped_early":
        say(f"{PROG}: error: " + stopped_early_line(
            outcome.stopped_early, outcome.failures,
            f"the rest of the run and its merge were cancelled ({len(outcome.cancelled)} job(s))")
            + f"; outputs written are kept under {manifest.run_root}\n"
            + next_steps(outcome.failures, manifest, args))
        write_page(manifest, "failed", outcome.failures, dict(next_step_commands(outcome.failures, manifest, args)))
        return 1
    if outcome.state == "over_budget":
        say(f"{PROG}: error: stopped: the estimated cost of run {run.run_id} so far, "
            f"${outcome.cost_usd:.2f} (an estimate at list prices), passed --max-cost "
            f"${args.max_cost:.2f}; the rest of the run and its merge were cancelled "
            f"({len(outcome.cancelled)} job(s)); outputs written are kept under {manifest.run_root}\n"
            f"continue with: {resume_hint(manifest, args)}")
        return 1
    if outcome.state == "fovs_failed":
        say(f"{PROG}: error: {failed_fovs_line(outcome.failures, len(manifest.fovs))}; "
            f"the merge job {run.merge_job_id} does not run.\n"
            f"{next_steps(outcome.failures, manifest, args)}")
        write_page(manifest, "failed", outcome.failures, dict(next_step_commands(outcome.failures, manifest, args)))
        return 1
    where = f"{run.run_id} {_where(args, results_url)}"
    say(f"\nstopped following run {run.run_id}; its jobs keep running on AWS Batch.\n"
        f"follow it:  {args.invocation} status {where}\n"
        f"cancel it:  {args.invocation} cancel {where}")
    write_page(manifest, "running", outcome.failures, {"follow it": f"{args.invocation} status {where}",
                                                       "cancel it": f"{args.invocation} cancel {where}"})
    return 130


def check_ground_truth(path: str | None) -> None:
    """A ground truth that cannot be scored is said now, not after the whole run."""
    if not path:
        return
    url = storage.absolute(path)
    try:
        with storage.local_copy(url) as local, open(local, "rb") as f:
            header = f.readline().decode("utf-8", "replace").strip().split(",")
    except (StarfishBatchError, OSError) as exc:
        raise StarfishBatchError(f"--ground-truth {path}: {getattr(exc, 'reason', None) or exc}") from None
    missing = [c for c in ("fov", "target", "x", "y") if c not in header]
    if missing:
        raise StarfishBatchError(f"--ground-truth {path} is not a ground truth: it lacks the column(s) "
                                 f"{', '.join(missing)} (expected fov,target,x,y)")


def run(args: argparse.Namespace) -> int:
    from starfish_batch.launcher.claim import RunClaim

    if args.resume:
        flags = (("--recipe", "RECIPE=", args.recipe), ("--experiment-url", "EXPERIMENT=", args.experiment_url),
                 ("--run-id", "--run-id", args.run_id), ("--fovs", "FOVS=", args.fovs),
                 ("--fovs-sample", "--fovs-sample", args.fovs_sample))
        make = _via_make()
        ignored = [m if make else f for f, m, v in flags if v]
        if ignored:
            resume = "RESUME=" if make else "--resume"
            raise StarfishBatchError(
                f"{' and '.join(ignored)} cannot be used with {resume}: a resume reruns run {args.resume}'s own "
                f"recipe on its own experiment; to run another recipe, start a new run (without {resume})"
            )
    if args.fovs and args.fovs_sample:
        raise StarfishBatchError("--fovs and --fovs-sample cannot be used together: name the FOVs, or give a count")
    check_ground_truth(args.ground_truth)
    _check_packing(args)
    with RunClaim() as claim:
        return _run(args, claim)


def _check_packing(args: argparse.Namespace) -> None:
    if args.fovs_per_job and args.fovs_per_job > 1 and args.executor != "batch":
        raise StarfishBatchError(f"--fovs-per-job {args.fovs_per_job} applies to --executor batch: "
                                 "local and Slurm runs start one worker process per FOV")


def packer(args: argparse.Namespace, results_url: str):
    """A function of the FOVs to process giving (FOVs per child, a child's predicted seconds or
    None): --fovs-per-job, else packed from the quote ``estimate`` left in the run (children of
    about --child-minutes), else 1."""
    from starfish_batch.contract import QUOTE_NAME
    from starfish_batch.launcher import packing

    quoted = None
    if args.resume and args.executor == "batch":
        url = storage.join(storage.absolute(results_url), args.resume, QUOTE_NAME)
        try:
            quoted = json.loads(storage.read_bytes(url)) if storage.exists(url) else None
        except (StarfishBatchError, ValueError) as exc:
            say(f"warning: the run's quote {url} cannot be read ({exc}): 1 FOV per child")

    def pack(n_fovs: int) -> tuple[int, float | None]:
        if args.executor != "batch":
            return 1, None
        if quoted is None:
            return args.fovs_per_job or 1, None
        work, start = quoted["seconds_per_fov_work"], quoted["startup_seconds_per_child"]["seconds"]
        per = args.fovs_per_job or packing.choose(n_fovs, work, start, quoted["fovs_at_once"], args.child_minutes)
        return per, start + per * work

    return pack


def _run(args: argparse.Namespace, claim) -> int:
    from starfish_batch.launcher.runs import NothingToDo, new_run, partial_text, resume_run

    started = time.perf_counter()
    executor, results_url, preflight = chosen_executor(args)
    if args.resume:
        if not results_url:
            _require(args, "results_url")
        refused: dict[str, str] = {}
        try:
            pack = packer(args, results_url)
            manifest, manifest_url = resume_run(results_url, args.resume, preflight=preflight, claim=claim,
                                                refused=refused, recipe_sha256=args.recipe_sha256,
                                                overlap=args.overlap, fovs_per_job=lambda n: pack(n)[0])
            child_seconds = pack(len(manifest.fovs))[1]
        except NothingToDo as done:
            say(str(done))
            return 0
        for line in refused.values():
            say(line)
        say(f"resuming run {manifest.run_id}: {len(manifest.fovs)} of "
            f"{len(manifest.run_fovs)} FOVs left to process")
    else:
        missing = [n for n in ("experiment_url", "recipe") if not getattr(args, n)]
        if not results_url:
            missing.append("results_url")
        if missing:
            _require(args, *missing)
        per_job, child_seconds = packer(args, results_url)(0)
        manifest, manifest_url = new_run(
            args.experiment_url, args.recipe, results_url,
            run_id=args.run_id, num_fovs=args.num_fovs, preflight=preflight, claim=claim,
            only=args.fovs, sample=args.fovs_sample,
            overlap=args.overlap,
            fovs_per_job=per_job,
        )
        partial = partial_text(manifest)
        say(f"run {manifest.run_id}: {len(manifest.fovs)} FOVs{f' ({partial})' if partial else ''} "
            f"-> {manifest.run_root} (recipe sha256 {manifest.recipe_sha256[:16]})")
    if args.executor == "slurm":
        from starfish_batch.launcher.slurm.run import run_slurm

        return run_slurm(executor, manifest, manifest_url, args, results_url, started)
    if executor is not None:
        from starfish_batch.launcher.packing import launch_line

        if manifest.fovs:
            say(launch_line(len(manifest.fovs), manifest.fovs_per_job, child_seconds))
        return run_batch(executor, manifest, manifest_url, args, results_url)
    return run_local(manifest, manifest_url, args, started)


def _print_batch_bill(executor, manifest: Manifest, args: argparse.Namespace) -> None:
    """The bill of every submission of the run, from AWS Batch's job attempts."""
    from starfish_batch.launcher.batch.jobs import submissions
    from starfish_batch.launcher.report import bill_lines
    from starfish_batch.pricing import PriceTable

    bill = _attach_bill(manifest, lambda: executor.bill(
        submissions(manifest.run_root, manifest.run_id), PriceTable.load(args.prices)))
    for line in bill_lines(bill) if bill else []:
        say(line)


# -- estimate -------------------------------------------------------------------------------------

def estimate(args: argparse.Namespace) -> int:
    """Start a run with a sample of its FOVs, through the executor the run uses, and quote the rest."""
    from starfish_batch.launcher.claim import RunClaim

    _check_packing(args)
    with RunClaim() as claim:  # the estimate is the start of a run: one launcher at a time
        return _estimate(args, claim)


def _estimate(args: argparse.Namespace, claim) -> int:
    from starfish_batch.launcher import quote
    from starfish_batch.launcher.estimate import estimate as make_quote
    from starfish_batch.launcher.estimate import quote_lines, spread
    from starfish_batch.launcher.runs import completed_fovs, new_run, resume_run

    if args.executor == "slurm":
        raise StarfishBatchError(
            "estimate runs with --executor local or batch: estimate on one node with --executor local, then "
            "finish the run with --executor slurm --resume RUN_ID (it takes --mem, --cpus-per-task and --time "
            "from that estimate)")
    executor, results_url, preflight = chosen_executor(args)
    hourly = None
    missing = [n for n in ("experiment_url", "recipe") if not getattr(args, n)]
    if missing or not results_url:
        _require(args, *missing, *([] if results_url else ["results_url"]))
    manifest, _ = new_run(args.experiment_url, args.recipe, results_url, run_id=args.run_id,
                          preflight=preflight, claim=claim)
    sample, sample_url = resume_run(results_url, manifest.run_id, only=spread(manifest.fovs, args.sample))
    say(f"run {manifest.run_id}: estimating from {len(sample.fovs)} of {len(manifest.fovs)} FOVs "
        f"-> {manifest.run_root}")
    if executor is None:
        from starfish_batch.launcher.local import LocalExecutor

        capacity = quote.local_capacity(len(manifest.fovs), args.workers, results_url)
        outcome = LocalExecutor(workers=min(capacity.slots, len(sample.fovs)), progress=not args.quiet,
                                fov_timeout=args.fov_timeout).process(sample, sample_url)
        interrupted, failures = outcome.interrupted, outcome.failed
        seconds = {f: outcome.fov_seconds[f] for f in outcome.succeeded}
    else:
        from starfish_batch.launcher.report import BatchProgress
        from starfish_batch.pricing import PriceTable

        capacity = quote.batch_capacity(executor)
        prices, env = PriceTable.load(args.prices), executor.compute_environment()
        observer = BatchProgress(enabled=not args.quiet)
        run = executor.submit(sample, sample_url, observer, merge=False)
        outcome = executor.follow(sample, run, observer)
        interrupted, failures = outcome.state == "interrupted", outcome.failures
        failed = {f.fov for f in failures}
        seconds = {f: s for f, s in executor.fov_seconds(sample, run).items() if f not in failed}

        def hourly(vcpus: float, memory_mib: float) -> float:
            return prices.hourly(env["type"], executor.outputs.region, vcpus, memory_mib, env["instance_types"])

    if interrupted:
        say(f"\ninterrupted: the sample's outputs so far are kept; continue with: {resume_hint(manifest, args)}")
        return 130
    if failures:
        print_failures(failures)
        say(f"{PROG}: error: {failed_fovs_line(failures, len(sample.fovs))} of the sample: no estimate. "
            f"Fix the recipe or data, then start a new estimate:\n  {estimate_hint(manifest, args)}")
        return 1
    left = len(manifest.fovs) - len(completed_fovs(manifest))
    result = make_quote(len(manifest.fovs), left, quote.samples(manifest, seconds), capacity, hourly,
                        fovs_per_job=args.fovs_per_job, child_minutes=args.child_minutes)
    result["run_id"] = manifest.run_id
    from starfish_batch.contract import QUOTE_NAME

    storage.write_text(storage.join(manifest.run_root, QUOTE_NAME), json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2), flush=True)
    else:
        print("\n".join(quote_lines(result)), flush=True)
    say(f"the sampled FOVs' outputs are kept in run {manifest.run_id}; finish it with:\n"
        f"  {resume_hint(manifest, args)}")
    return 0


# -- status and cancel ------------------------------------------------------------------------------

def status(args: argparse.Namespace) -> int:
    from starfish_batch.launcher.runs import load_run, progress

    if args.executor == "slurm":
        from starfish_batch.launcher.slurm.run import status as slurm_status

        return slurm_status(args)
    if args.executor != "batch":
        _require(args, "results_url")
        manifest = load_run(args.results_url, args.run_id)
        state = progress(manifest)
        print(json.dumps(state, indent=2), flush=True)
        for line in state["fovs_refused"]:
            say(line)
        write_page(manifest, "merged" if state["merged"] else "running", source="status")
        return 0 if state["merged"] else 1
    from starfish_batch.launcher.batch.jobs import submissions

    executor, results_url = batch_executor(args)  # default results: the module's bucket
    manifest = load_run(results_url, args.run_id)
    jobs_state, failures = executor.status(manifest, submissions(manifest.run_root, manifest.run_id))
    state = {**progress(manifest), **jobs_state}
    print(json.dumps(state, indent=2), flush=True)
    for line in state["fovs_refused"]:
        say(line)
    if failures:
        print_failures(failures)
        say(next_steps(failures, manifest, args))
    if state["merged"]:
        say(f"merged: {manifest.merged_url}")
        _print_batch_bill(executor, manifest, args)  # also for a run submitted with --no-wait
    write_page(manifest, "merged" if state["merged"] else ("failed" if failures else "running"), failures,
               dict(next_step_commands(failures, manifest, args)) if failures else None, source="status")
    return 0 if state["merged"] else 1


def cancel(args: argparse.Namespace) -> int:
    """A Batch or Slurm run's jobs are cancelled; a local run's launcher is stopped as Ctrl-C
    stops it (``local_cancel``). A run with no jobs file ran on a machine."""
    from starfish_batch.launcher.batch.jobs import JOBS_FILE_RE, submissions
    from starfish_batch.launcher.runs import load_run

    if args.executor == "slurm":
        from starfish_batch.launcher.slurm.run import cancel as slurm_cancel

        return slurm_cancel(args)
    if args.executor != "batch" and args.results_url:
        manifest = load_run(args.results_url, args.run_id)
        if not any(JOBS_FILE_RE.match(n) for n in storage.list_names(manifest.run_root)):
            from starfish_batch.launcher.local_cancel import cancel_local

            code, text = cancel_local(manifest)
            say(text)
            return code
    executor, results_url = batch_executor(args)
    manifest = load_run(results_url, args.run_id)
    terminated, cancelled = executor.cancel(args.run_id, submissions(manifest.run_root, manifest.run_id))
    if not terminated and not cancelled:
        say(f"nothing to cancel: every job of run {args.run_id} has finished")
        return 0
    for job_id in terminated:
        print(f"terminated {job_id}")
    for job_id in cancelled:
        print(f"cancelled {job_id}", flush=True)
    say(f"run {args.run_id}: {len(terminated)} job(s) terminated, {len(cancelled)} cancelled; "
        f"outputs written so far are kept; continue later with --resume {args.run_id}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from starfish_batch.launcher.report import RetryNotices

    RetryNotices.install()
    signals.sigterm_interrupts()  # SIGTERM stops a run as Ctrl-C does: workers stopped, resume said
    try:
        args = parse_args(argv)
        return {"status": status, "cancel": cancel, "estimate": estimate}.get(args.command, run)(args)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        return report(PROG, exc)


if __name__ == "__main__":
    sys.exit(main())
