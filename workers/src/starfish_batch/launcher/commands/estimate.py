"""``estimate``: start a run with a spread sample of its FOVs, through the executor the run
uses, and quote the whole run's time, memory, cost and results size (the arithmetic is
``launcher.quote``'s); the run is finished later with ``--resume``."""

from __future__ import annotations

import json

from starfish_batch.core import storage
from starfish_batch.core.contract import LAUNCHER as PROG
from starfish_batch.core.contract import QUOTE_NAME
from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.launcher.claim import RunClaim
from starfish_batch.launcher.commands.executors import chosen_executor
from starfish_batch.launcher.console import BatchProgress, failed_fovs_line, print_failures, say
from starfish_batch.launcher.hints import estimate_hint, resume_hint
from starfish_batch.launcher.options import Options, check_packing, require
from starfish_batch.launcher.pricing import PriceTable


def estimate(args: Options) -> int:
    """Start a run with a sample of its FOVs, through the executor the run uses, and quote the rest."""
    check_packing(args)
    with RunClaim() as claim:  # the estimate is the start of a run: one launcher at a time
        return _estimate(args, claim)


def _estimate(args: Options, claim) -> int:
    from starfish_batch.launcher import sample as sampling  # lazy: sample ~18 ms of CLI start-up
    from starfish_batch.launcher.quote import estimate as make_quote  # lazy: quote ~7 ms of CLI start-up
    from starfish_batch.launcher.quote import quote_lines, spread  # lazy: quote ~7 ms of CLI start-up

    # lazy: launcher.runs pulls pandas into CLI start-up
    from starfish_batch.launcher.runs import completed_fovs, new_run, resume_run

    if args.executor == "slurm":
        raise StarfishBatchError(
            "estimate runs with --executor local or batch: estimate on one node with --executor local, then "
            "finish the run with --executor slurm --resume RUN_ID (it takes --mem, --cpus-per-task and --time "
            "from that estimate)")
    executor, results_url, preflight = chosen_executor(args)
    missing = [n for n in ("experiment_url", "recipe") if not getattr(args, n)]
    if missing or not results_url:
        require(args, *missing, *([] if results_url else ["results_url"]))
    manifest, _ = new_run(args.experiment_url, args.recipe, results_url, run_id=args.run_id,
                          preflight=preflight, claim=claim)
    sample, sample_url = resume_run(results_url, manifest.run_id, only=spread(manifest.fovs, args.sample))
    say(f"run {manifest.run_id}: estimating from {len(sample.fovs)} of {len(manifest.fovs)} FOVs "
        f"-> {manifest.run_root}")
    sampler = _sample_locally if executor is None else _sample_on_batch
    interrupted, failures, seconds, capacity, hourly = sampler(executor, args, manifest, sample, sample_url,
                                                               results_url)
    if interrupted:
        say(f"\ninterrupted: the sample's outputs so far are kept; continue with: {resume_hint(manifest, args)}")
        return 130
    if failures:
        print_failures(failures)
        say(f"{PROG}: error: {failed_fovs_line(failures, len(sample.fovs))} of the sample: no estimate. "
            f"Fix the recipe or data, then start a new estimate:\n  {estimate_hint(manifest, args)}")
        return 1
    left = len(manifest.fovs) - len(completed_fovs(manifest))
    result = make_quote(len(manifest.fovs), left, sampling.samples(manifest, seconds), capacity, hourly,
                        fovs_per_job=args.fovs_per_job, child_minutes=args.child_minutes)
    result["run_id"] = manifest.run_id
    storage.write_text(storage.join(manifest.run_root, QUOTE_NAME), json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2), flush=True)
    else:
        print("\n".join(quote_lines(result)), flush=True)
    say(f"the sampled FOVs' outputs are kept in run {manifest.run_id}; finish it with:\n"
        f"  {resume_hint(manifest, args)}")
    return 0


def _sample_locally(executor, args: Options, manifest, sample, sample_url: str, results_url: str):
    """(interrupted, failures, seconds of each FOV that succeeded, capacity, hourly price: None)."""
    from starfish_batch.launcher import sample as sampling  # lazy: sample ~18 ms of CLI start-up
    from starfish_batch.launcher.executors.local import LocalExecutor  # lazy: executors.local ~8 ms of CLI start-up

    capacity = sampling.local_capacity(len(manifest.fovs), args.workers, results_url)
    outcome = LocalExecutor(workers=min(capacity.slots, len(sample.fovs)), progress=not args.quiet,
                            fov_timeout=args.fov_timeout).process(sample, sample_url)
    seconds = {f: outcome.fov_seconds[f] for f in outcome.succeeded}
    return outcome.interrupted, outcome.failed, seconds, capacity, None


def _sample_on_batch(executor, args: Options, manifest, sample, sample_url: str, results_url: str):
    """(interrupted, failures, seconds of each FOV that succeeded, capacity, hourly price of a size)."""
    from starfish_batch.launcher import sample as sampling  # lazy: sample ~18 ms of CLI start-up

    capacity = sampling.batch_capacity(executor)
    prices, env = PriceTable.load(args.prices), executor.compute_environment()
    observer = BatchProgress(enabled=not args.quiet)
    run = executor.submit(sample, sample_url, observer, merge=False)
    outcome = executor.follow(sample, run, observer)
    failed = {f.fov for f in outcome.failures}
    seconds = {f: s for f, s in executor.fov_seconds(sample, run).items() if f not in failed}

    def hourly(vcpus: float, memory_mib: float) -> float:
        return prices.hourly(env["type"], executor.outputs.region, vcpus, memory_mib, env["instance_types"])

    return outcome.state == "interrupted", outcome.failures, seconds, capacity, hourly
