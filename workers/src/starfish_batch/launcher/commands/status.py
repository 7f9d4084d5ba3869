"""``status RUN_ID``: how far a run got, as JSON on stdout (exit 0 once merged), from its
outputs and, on a cluster, its jobs; failures explained with the commands that fix them."""

from __future__ import annotations

import json

from starfish_batch.launcher.commands.bills import print_batch_bill
from starfish_batch.launcher.commands.executors import batch_executor
from starfish_batch.launcher.console import print_failures, say
from starfish_batch.launcher.executors.batch.jobs import submissions
from starfish_batch.launcher.hints import next_step_commands, next_steps
from starfish_batch.launcher.options import Options, require
from starfish_batch.launcher.run_page import write_page


def status(args: Options) -> int:
    if args.executor == "slurm":
        # lazy: slurm.run ~0.1 s; only --executor slurm
        from starfish_batch.launcher.executors.slurm.run import status as slurm_status

        return slurm_status(args)
    return (_batch_status if args.executor == "batch" else _local_status)(args)


def _local_status(args: Options) -> int:
    """A run on this machine: its outputs alone say how far it got."""
    from starfish_batch.launcher.runs import load_run, progress  # lazy: launcher.runs pulls pandas into CLI start-up

    require(args, "results_url")
    manifest = load_run(args.results_url, args.run_id)
    state = progress(manifest)
    print(json.dumps(state, indent=2), flush=True)
    for line in state["fovs_refused"]:
        say(line)
    write_page(manifest, "merged" if state["merged"] else "running", source="status")
    return 0 if state["merged"] else 1


def _batch_status(args: Options) -> int:
    """A run on AWS Batch: its outputs and the state of every job of every submission."""
    from starfish_batch.launcher.runs import load_run, progress  # lazy: launcher.runs pulls pandas into CLI start-up

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
        print_batch_bill(executor, manifest, args)  # also for a run submitted with --no-wait
    write_page(manifest, "merged" if state["merged"] else ("failed" if failures else "running"), failures,
               dict(next_step_commands(failures, manifest, args)) if failures else None, source="status")
    return 0 if state["merged"] else 1
