"""The executor a command's flags choose (local, AWS Batch from the Terraform outputs, Slurm),
with the results URL and the preflight a new run passes before anything is written."""

from __future__ import annotations

from starfish_batch.core import storage
from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.core.manifest import Manifest
from starfish_batch.launcher.console import say
from starfish_batch.launcher.executors.batch import BatchExecutor
from starfish_batch.launcher.options import Options
from starfish_batch.launcher.tf_outputs import read_outputs

BATCH_MIN_TIMEOUT = 60  # AWS Batch refuses an attemptDurationSeconds below 60


def batch_executor(args: Options):
    """The Batch executor and the results URL (default: the module's bucket), from the flags and
    the Terraform outputs (read now: a clear error if absent)."""
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
    # lazy: results_home pulls pandas into CLI start-up
    from starfish_batch.launcher.results_home import default_results_url

    return executor, default_results_url(executor)  # the caller's own folder, when the module scopes writes


def chosen_executor(args: Options):
    """(Batch or Slurm executor, or None for local; results URL; preflight or None) for starting
    a run: the preflight checks the queue and outputs before anything is written."""
    if args.executor == "slurm":
        # lazy: slurm.run ~0.1 s; only --executor slurm
        from starfish_batch.launcher.executors.slurm.run import executor_from

        executor, results_url = executor_from(args), args.results_url
    elif args.executor == "batch":
        executor, results_url = batch_executor(args)
    else:
        return None, args.results_url, None

    def preflight(manifest: Manifest) -> None:
        for warning in executor.preflight(manifest):
            say(warning)

    return executor, results_url, preflight
