"""``run`` (the default command): a new run or a resume, its FOVs processed by the chosen
executor, then merged; what it says at the end and its exit code."""

from __future__ import annotations

import json
import time

from starfish_batch.core import printable, storage
from starfish_batch.core.contract import LAUNCHER as PROG
from starfish_batch.core.contract import MAX_LOG_TAILS, QUOTE_NAME
from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.core.manifest import Manifest
from starfish_batch.launcher import packing
from starfish_batch.launcher.claim import RunClaim
from starfish_batch.launcher.commands.bills import attach_bill
from starfish_batch.launcher.commands.executors import chosen_executor
from starfish_batch.launcher.commands.follow import run_batch
from starfish_batch.launcher.console import (
    failed_fovs_line,
    print_failures,
    print_interrupted,
    print_summary,
    say,
    stopped_early_line,
)
from starfish_batch.launcher.hints import next_step_commands, next_steps, resume_hint, via_make
from starfish_batch.launcher.options import Options, check_packing, require
from starfish_batch.launcher.outcome import Failure
from starfish_batch.launcher.packing import launch_line
from starfish_batch.launcher.run_page import write_page


def run(args: Options) -> int:
    if args.resume:
        _check_resume_flags(args)
    if args.fovs and args.fovs_sample:
        raise StarfishBatchError("--fovs and --fovs-sample cannot be used together: name the FOVs, or give a count")
    check_ground_truth(args.ground_truth)
    check_packing(args)
    with RunClaim() as claim:
        return _run(args, claim)


def _check_resume_flags(args: Options) -> None:
    """A resume takes none of the flags that choose what a run processes: it reruns its own."""
    flags = (("--recipe", "RECIPE=", args.recipe), ("--experiment-url", "EXPERIMENT=", args.experiment_url),
             ("--run-id", "--run-id", args.run_id), ("--fovs", "FOVS=", args.fovs),
             ("--fovs-sample", "--fovs-sample", args.fovs_sample))
    make = via_make()
    ignored = [m if make else f for f, m, v in flags if v]
    if ignored:
        resume = "RESUME=" if make else "--resume"
        raise StarfishBatchError(
            f"{' and '.join(ignored)} cannot be used with {resume}: a resume reruns run {args.resume}'s own "
            f"recipe on its own experiment; to run another recipe, start a new run (without {resume})"
        )


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


def packer(args: Options, results_url: str):
    """A function of the FOVs to process giving (FOVs per child, a child's predicted seconds or
    None): --fovs-per-job, else packed from the quote ``estimate`` left in the run (children of
    about --child-minutes), else 1."""
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


def _run(args: Options, claim) -> int:
    started = time.perf_counter()
    executor, results_url, preflight = chosen_executor(args)
    opened = (_resume if args.resume else _new)(args, claim, results_url, preflight)
    if opened is None:
        return 0  # nothing left to do: said
    manifest, manifest_url, child_seconds = opened
    if args.executor == "slurm":
        # lazy: slurm.run ~0.1 s; only --executor slurm
        from starfish_batch.launcher.executors.slurm.run import run_slurm

        return run_slurm(executor, manifest, manifest_url, args, results_url, started)
    if executor is not None:
        if manifest.fovs:
            say(launch_line(len(manifest.fovs), manifest.fovs_per_job, child_seconds))
        return run_batch(executor, manifest, manifest_url, args, results_url)
    return run_local(manifest, manifest_url, args, started)


def _resume(args: Options, claim, results_url: str | None, preflight):
    """(manifest, its URL, a child's predicted seconds) of what is left of run --resume, or None."""
    # lazy: launcher.runs pulls pandas into CLI start-up
    from starfish_batch.launcher.runs import NothingToDo, resume_run

    if not results_url:
        require(args, "results_url")
    refused: dict[str, str] = {}
    try:
        pack = packer(args, results_url)
        manifest, manifest_url = resume_run(results_url, args.resume, preflight=preflight, claim=claim,
                                            refused=refused, recipe_sha256=args.recipe_sha256,
                                            overlap=args.overlap, fovs_per_job=lambda n: pack(n)[0])
        child_seconds = pack(len(manifest.fovs))[1]
    except NothingToDo as done:
        say(str(done))
        return None
    for line in refused.values():
        say(line)
    say(f"resuming run {manifest.run_id}: {len(manifest.fovs)} of "
        f"{len(manifest.run_fovs)} FOVs left to process")
    return manifest, manifest_url, child_seconds


def _new(args: Options, claim, results_url: str | None, preflight):
    """(manifest, its URL, a child's predicted seconds) of a new run."""
    from starfish_batch.launcher.runs import new_run, partial_text  # lazy: launcher.runs pulls pandas into CLI start-up

    missing = [n for n in ("experiment_url", "recipe") if not getattr(args, n)]
    if not results_url:
        missing.append("results_url")
    if missing:
        require(args, *missing)
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
    return manifest, manifest_url, child_seconds


def run_local(manifest: Manifest, manifest_url: str, args: Options, started: float) -> int:
    from starfish_batch.launcher.executors.local import LocalExecutor  # lazy: executors.local ~8 ms of CLI start-up

    executor = LocalExecutor(workers=args.workers, progress=not args.quiet, max_failures=args.max_failures,
                             fov_timeout=args.fov_timeout)
    outcome = executor.process(manifest, manifest_url)
    if outcome.interrupted:
        print_interrupted(manifest, resume_hint(manifest, args))
        write_page(manifest, "interrupted", outcome.failed, {"continue the run": resume_hint(manifest, args)})
        return 130
    if outcome.failed or outcome.stopped_early:
        for failure in outcome.failed[MAX_LOG_TAILS:]:
            failure.tail = None
        say()
        print_failures(outcome.failed)
    if outcome.stopped_early:
        say(stopped_early_line(outcome.stopped_early, outcome.failed,
                               f"{len(outcome.not_started)} FOVs were not started")
            + f"; outputs written are kept under {manifest.run_root}\n"
            + next_steps(outcome.failed, manifest, args))
        write_page(manifest, "failed", outcome.failed, dict(next_step_commands(outcome.failed, manifest, args)))
        return 1
    if outcome.failed:
        say(f"\n{failed_fovs_line(outcome.failed, len(manifest.fovs))}; {kept_text(manifest)}")
        if not args.allow_partial:
            say(f"not merging.\n{next_steps(outcome.failed, manifest, args)}")
            write_page(manifest, "failed", outcome.failed, dict(next_step_commands(outcome.failed, manifest, args)))
            return 1
    return _merge_local(executor, outcome, manifest, manifest_url, args, started)


def _merge_local(executor, outcome, manifest: Manifest, manifest_url: str, args: Options,
                 started: float) -> int:
    """The merge of a local run whose FOVs are done (or failed, with --allow-partial), and its summary."""
    from starfish_batch.launcher.bill import local_bill  # lazy: launcher.bill ~7 ms of CLI start-up

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
    attach_bill(manifest, lambda: local_bill(manifest))
    print_summary(manifest, time.perf_counter() - started, args.ground_truth, processed=len(outcome.succeeded))
    if outcome.failed:  # merged without them (--allow-partial): what to do about them, as for any failure
        say(next_steps(outcome.failed, manifest, args))
    write_page(manifest, "partial" if outcome.failed else "merged", outcome.failed,
               dict(next_step_commands(outcome.failed, manifest, args)) if outcome.failed else None)
    return 1 if outcome.failed else 0


def kept_text(manifest: Manifest) -> str:
    """Which outputs a failed pass keeps: every FOV of the run that has one, this pass's or earlier."""
    from starfish_batch.launcher.runs import completed_fovs  # lazy: launcher.runs pulls pandas into CLI start-up

    done = len(completed_fovs(manifest))
    where = storage.join(manifest.run_root, "fovs")
    if not done:
        return f"no FOV of the run has an output yet (under {where})"
    return f"the outputs of the {done} FOV(s) of the run that succeeded are kept under {where}"
