"""Following a run submitted to a cluster (AWS Batch; Slurm ends the same way) to its end:
what it says about how the run ended, and the exit code."""

from __future__ import annotations

from starfish_batch.core import printable, storage
from starfish_batch.core.contract import LAUNCHER as PROG
from starfish_batch.core.contract import MERGED_NAME
from starfish_batch.core.manifest import Manifest
from starfish_batch.launcher.commands.bills import print_batch_bill
from starfish_batch.launcher.console import (
    BatchProgress,
    failed_fovs_line,
    print_failures,
    print_job_ids,
    say,
    stopped_early_line,
    submitted_text,
)
from starfish_batch.launcher.executors.batch.escalate import next_size
from starfish_batch.launcher.hints import next_step_commands, next_steps, resume_hint, where
from starfish_batch.launcher.options import Options
from starfish_batch.launcher.pricing import PriceTable
from starfish_batch.launcher.run_page import write_page


def run_batch(executor, manifest: Manifest, manifest_url: str, args: Options,
              results_url: str) -> int:
    observer = BatchProgress(enabled=not args.quiet)
    run = executor.submit(manifest, manifest_url, observer)
    say(submitted_text(run))
    if args.no_wait:
        print_job_ids(run)
        return 0
    manifest, run, outcome = follow_escalating(executor, manifest, run, observer, args, results_url)
    return finish_batch(outcome, manifest, run, args, results_url, executor)


def follow_escalating(executor, manifest: Manifest, run, observer, args: Options,
                      results_url: str):
    """Follow a run; when every failed FOV ran out of memory, resubmit just those FOVs as one
    array with twice the memory (up to --max-memory) and a new merge, and follow that."""
    from starfish_batch.launcher.runs import resume_run  # lazy: launcher.runs pulls pandas into CLI start-up

    prices = None
    if args.max_cost is not None:
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


def finish_batch(outcome, manifest: Manifest, run, args: Options, results_url: str,
                 executor=None) -> int:
    """What the end of following a Batch run says, and its exit code."""
    merged = storage.join(manifest.run_root, MERGED_NAME)
    if outcome.state == "merged":
        print(f"merged: {merged}", flush=True)
        if executor is not None:
            print_batch_bill(executor, manifest, args)
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
    if outcome.state in ("stopped_early", "over_budget", "fovs_failed"):
        return _stopped(outcome, manifest, run, args)
    found = f"{run.run_id} {where(args, results_url)}"
    say(f"\nstopped following run {run.run_id}; its jobs keep running on AWS Batch.\n"
        f"follow it:  {args.invocation} status {found}\n"
        f"cancel it:  {args.invocation} cancel {found}")
    write_page(manifest, "running", outcome.failures, {"follow it": f"{args.invocation} status {found}",
                                                       "cancel it": f"{args.invocation} cancel {found}"})
    return 130


def _stopped(outcome, manifest: Manifest, run, args: Options) -> int:
    """A run whose FOVs failed, or that was stopped early or over budget: said, exit code 1."""
    if outcome.state == "over_budget":
        say(f"{PROG}: error: stopped: the estimated cost of run {run.run_id} so far, "
            f"${outcome.cost_usd:.2f} (an estimate at list prices), passed --max-cost "
            f"${args.max_cost:.2f}; the rest of the run and its merge were cancelled "
            f"({len(outcome.cancelled)} job(s)); outputs written are kept under {manifest.run_root}\n"
            f"continue with: {resume_hint(manifest, args)}")
        return 1
    if outcome.state == "stopped_early":
        say(f"{PROG}: error: " + stopped_early_line(
            outcome.stopped_early, outcome.failures,
            f"the rest of the run and its merge were cancelled ({len(outcome.cancelled)} job(s))")
            + f"; outputs written are kept under {manifest.run_root}\n"
            + next_steps(outcome.failures, manifest, args))
    else:
        say(f"{PROG}: error: {failed_fovs_line(outcome.failures, len(manifest.fovs))}; "
            f"the merge job {run.merge_job_id} does not run.\n"
            f"{next_steps(outcome.failures, manifest, args)}")
    write_page(manifest, "failed", outcome.failures, dict(next_step_commands(outcome.failures, manifest, args)))
    return 1
