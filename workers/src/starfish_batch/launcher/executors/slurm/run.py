"""The launcher's commands on Slurm: run (submit, follow, resubmit FOVs out of memory or off a
failed node, the closing lines), status and cancel. ``launcher.cli`` hands ``--executor slurm``
here; failures print through the one printer (``console.print_failures``) and the closing lines
of a failed run are the Batch executor's (``commands.follow.finish_batch``)."""

from __future__ import annotations

import json
import time

from starfish_batch.core import storage
from starfish_batch.core.contract import LAUNCHER as PROG
from starfish_batch.core.contract import MERGE, MERGED_NAME, PROCESS_FOV
from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.core.manifest import Manifest
from starfish_batch.launcher.bill import fov_records, records_bill
from starfish_batch.launcher.commands.bills import attach_bill
from starfish_batch.launcher.commands.follow import finish_batch
from starfish_batch.launcher.console import BatchProgress, print_failures, print_job_ids, print_summary, say
from starfish_batch.launcher.executors.slurm import options as slurm_options
from starfish_batch.launcher.executors.slurm.executor import SlurmExecutor
from starfish_batch.launcher.executors.slurm.jobs import SlurmSubmission, submissions
from starfish_batch.launcher.hints import next_step_commands, next_steps, resume_hint
from starfish_batch.launcher.options import Options, require
from starfish_batch.launcher.outcome import FollowOutcome
from starfish_batch.launcher.pricing import Bill
from starfish_batch.launcher.run_page import write_page
from starfish_batch.launcher.runs import load_run, progress, resume_run

MAX_RETRIES = 2  # resubmissions of FOVs whose node failed or that were preempted


def executor_from(args: Options) -> SlurmExecutor:
    if getattr(args, "allow_partial", False):
        raise StarfishBatchError(
            "--allow-partial applies to the local executor; on Slurm a failed FOV stops the merge: "
            "fix the recipe or data, then --resume RUN_ID")
    return SlurmExecutor(slurm_options.from_args(args))


def resources_for(manifest: Manifest, options: slurm_options.SlurmOptions) -> tuple[dict, str]:
    """Each FOV's CPUs, memory and time limit: the flags, else what the run's own estimate
    measured (its sampled FOVs' records), else the defaults; and where they came from."""
    quoted = slurm_options.quoted_defaults(fov_records(manifest).values()) if manifest.all_fovs is not None else {}
    found = {"vcpus": options.cpus or quoted.get("vcpus") or slurm_options.DEFAULT_CPUS,
             "memory_mib": options.memory_mib or quoted.get("memory_mib") or slurm_options.DEFAULT_MEMORY_MIB,
             "time": options.time or quoted.get("time")}
    source = "the run's estimate" if quoted and not (options.cpus and options.memory_mib and options.time) else "flags"
    return found, source


def submitted_text(sub: SlurmSubmission) -> str:
    limit = f", time limit {sub.resources['time']}" if sub.resources.get("time") else ""
    lines = [f"submitted run {sub.run_id} to Slurm ({sub.resources['vcpus']} CPU(s), "
             f"{sub.resources['memory_mib']} MiB{limit} per FOV):"]
    for job in sub.process_jobs:
        last = job.offset + job.size - 1
        lines.append(f"  {PROCESS_FOV} {job.job_id} (array of {job.size}, FOVs {job.offset} to {last})")
    if sub.merge_job_id:
        lines.append(f"  {MERGE} {sub.merge_job_id} (after {len(sub.process_jobs)} array(s))")
    lines.append(f"  job ids saved in {sub.jobs_url}; job output in {sub.log_dir}")
    return "\n".join(lines)


def run_slurm(executor: SlurmExecutor, manifest: Manifest, manifest_url: str, args: Options,
              results_url: str, started: float) -> int:
    resources, source = resources_for(manifest, executor.options)
    observer = BatchProgress(enabled=not args.quiet)
    sub = executor.submit(manifest, manifest_url, observer, resources=resources)
    said = submitted_text(sub) + (f"\n  sizes from {source}" if source != "flags" else "")
    if args.no_wait:
        say(said)
        print_job_ids(sub)
        return 0
    manifest, sub, outcome = follow_resubmitting(executor, manifest, sub, observer, args, results_url, said)
    return finish(outcome, manifest, sub, args, results_url, started)


def _follow(executor: SlurmExecutor, manifest: Manifest, sub: SlurmSubmission, observer, limits: dict,
            said: str) -> FollowOutcome:
    """Say what was submitted, then follow it: Ctrl-C (or SIGTERM) from the moment the jobs are
    submitted, not only once ``follow`` polls, cancels them."""
    try:
        if said:
            say(said)
        return executor.follow(manifest, sub, observer, **limits)
    except KeyboardInterrupt:
        return FollowOutcome("interrupted", [], cancelled=executor.cancel_jobs(sub.job_ids))


def follow_resubmitting(executor: SlurmExecutor, manifest: Manifest, sub: SlurmSubmission, observer,
                        args: Options, results_url: str, said: str = ""):
    """Follow a submission (``said``: what the launcher says of it first); when every failed FOV
    ran out of memory or lost its node, resubmit just those FOVs as one array (twice the memory
    for the first, up to --max-memory) and a new merge, and follow that. The FOVs that succeeded
    are not run again."""
    limits = {"max_failures": args.max_failures, "max_core_hours": args.max_cost}
    outcome = _follow(executor, manifest, sub, observer, limits, said)
    retries = 0
    while outcome.state == "fovs_failed" and outcome.failures \
            and all(f.out_of_memory or getattr(f, "retryable", False) for f in outcome.failures):
        memory = int(sub.resources["memory_mib"])
        oom = [f for f in outcome.failures if f.out_of_memory]
        names = ", ".join(f.fov or "?" for f in outcome.failures)
        if oom:
            bigger = min(2 * memory, int(args.max_memory))
            if bigger <= memory:
                say(f"{len(oom)} FOV(s) ran out of memory with {memory} MiB ({names}), the --max-memory cap "
                    f"of {args.max_memory} MiB: not resubmitted")
                break
            why = f"ran out of memory with {memory} MiB"
        else:
            retries += 1
            if retries > MAX_RETRIES:
                say(f"{len(outcome.failures)} FOV(s) lost their node or were preempted {MAX_RETRIES + 1} times "
                    f"({names}): not resubmitted again")
                break
            bigger = memory
            why = "lost their node or were preempted"
        manifest, url = resume_run(results_url, manifest.run_id, only=[f.fov for f in outcome.failures])
        sub = executor.submit(manifest, url, observer, resources={**sub.resources, "memory_mib": bigger},
                              escalated_from={f.fov: f.job_id for f in outcome.failures})
        outcome = _follow(executor, manifest, sub, observer, limits,
                          f"{len(outcome.failures)} FOV(s) {why} ({names}): resubmitted with {bigger} MiB as job "
                          f"{sub.process_jobs[0].job_id}, then a new merge {sub.merge_job_id} (recorded in "
                          f"{sub.jobs_url})")
    return manifest, sub, outcome


def slurm_bill(manifest: Manifest) -> Bill:
    """Core-hours and GB-hours (peak memory) of the FOVs, from their records."""
    return records_bill(manifest, "Slurm: each FOV's CPUs (core-hours) and peak memory for its seconds, "
                                  "from the FOV records; the merge and queueing are not included")


def finish(outcome, manifest: Manifest, sub: SlurmSubmission, args: Options, results_url: str,
           started: float) -> int:
    """What the end of following a Slurm run says, and its exit code."""
    if outcome.state == "merged":
        attach_bill(manifest, lambda: slurm_bill(manifest))
        print_summary(manifest, time.perf_counter() - started, args.ground_truth)
        write_page(manifest, "merged")
        return 0
    if outcome.state == "interrupted":
        say(f"\ninterrupted: the Slurm jobs of run {sub.run_id} are cancelled "
            f"({' '.join(outcome.cancelled) or 'none was left'}); outputs written so far are kept under "
            f"{manifest.run_root}\ncontinue with: {resume_hint(manifest, args)}")
        write_page(manifest, "interrupted", outcome.failures, {"continue the run": resume_hint(manifest, args)})
        return 130
    if outcome.state == "over_budget":
        say(f"{PROG}: error: stopped: submission {sub.jobs_url.rsplit('/', 1)[-1]} of run {sub.run_id} used "
            f"{outcome.cost_usd:.3f} core-hours, past --max-cost {args.max_cost:g} core-hours; the rest of the run "
            f"and its merge were cancelled ({len(outcome.cancelled)} job(s)); outputs written are kept under "
            f"{manifest.run_root}\ncontinue with: {resume_hint(manifest, args)}")
        return 1
    if outcome.state == "merged_file_missing":
        say(f"{PROG}: error: the merge job {sub.merge_job_id} completed but "
            f"{storage.join(manifest.run_root, MERGED_NAME)} does not exist (see {sub.merge_log()})")
        write_page(manifest, "failed")
        return 1
    return finish_batch(outcome, manifest, sub, args, results_url)


def status(args: Options) -> int:
    require(args, "results_url")
    manifest = load_run(args.results_url, args.run_id)
    jobs_state, failures = SlurmExecutor().status(manifest, submissions(manifest.run_root, manifest.run_id))
    state = {**progress(manifest), **jobs_state}
    print(json.dumps(state, indent=2), flush=True)
    if failures:
        print_failures(failures)
        say(next_steps(failures, manifest, args))
    if state["merged"]:
        say(f"merged: {manifest.merged_url}")
    write_page(manifest, "merged" if state["merged"] else ("failed" if failures else "running"), failures,
               dict(next_step_commands(failures, manifest, args)) if failures else None, source="status")
    return 0 if state["merged"] else 1


def cancel(args: Options) -> int:
    require(args, "results_url")
    manifest = load_run(args.results_url, args.run_id)
    ids = [i for s in submissions(manifest.run_root, manifest.run_id) for i in s.job_ids]
    cancelled = SlurmExecutor().cancel_jobs(ids)
    if not cancelled:
        say(f"nothing to cancel: every Slurm job of run {args.run_id} has ended")
        return 0
    for job_id in cancelled:
        print(f"cancelled {job_id}", flush=True)
    say(f"run {args.run_id}: {len(cancelled)} Slurm job(s) cancelled (scancel); outputs written so far are kept; "
        f"continue later with --resume {args.run_id}")
    return 0
