"""``cancel RUN_ID``: a Batch or Slurm run's jobs are cancelled; a local run's launcher is
stopped as Ctrl-C stops it (``local_cancel``: workers stopped, outputs kept). A run with no
jobs file ran on a machine."""

from __future__ import annotations

from starfish_batch.core import storage
from starfish_batch.launcher.commands.executors import batch_executor
from starfish_batch.launcher.console import say
from starfish_batch.launcher.executors.batch.jobs import JOBS_FILE_RE, submissions
from starfish_batch.launcher.executors.local_cancel import cancel_local
from starfish_batch.launcher.options import Options


def cancel(args: Options) -> int:
    from starfish_batch.launcher.runs import load_run  # lazy: launcher.runs pulls pandas into CLI start-up

    if args.executor == "slurm":
        # lazy: slurm.run ~0.1 s; only --executor slurm
        from starfish_batch.launcher.executors.slurm.run import cancel as slurm_cancel

        return slurm_cancel(args)
    if args.executor != "batch" and args.results_url:
        manifest = load_run(args.results_url, args.run_id)
        if not any(JOBS_FILE_RE.match(n) for n in storage.list_names(manifest.run_root)):
            code, text = cancel_local(manifest)
            say(text)
            return code
    return _cancel_batch(args)  # also a run started on Batch and named without --executor batch


def _cancel_batch(args: Options) -> int:
    from starfish_batch.launcher.runs import load_run  # lazy: launcher.runs pulls pandas into CLI start-up

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
        f"outputs written are kept; continue later with --resume {args.run_id}")
    return 0
