"""What the launcher's flags may hold: ``Options``, the one object the command line is parsed
into (every command's flags, typed), the argparse types of its values, and the checks that need
several flags at once."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields

from starfish_batch.core.contract import LAUNCHER as PROG
from starfish_batch.core.errors import StarfishBatchError


@dataclass
class Options:
    """Every flag of every command (``cli.build_parser``), typed; a flag a command does not take
    keeps the default here, so the code below the CLI reads one shape whatever the command.
    ``invocation`` is how to run the launcher again (the hints print it)."""

    command: str = "run"
    invocation: str = ""
    # what to run, and where its results go
    experiment_url: str | None = None
    recipe: str | None = None
    recipe_sha256: str | None = None
    results_url: str | None = None
    results_bucket: str | None = None
    run_id: str | None = None
    resume: str | None = None
    fovs: list[str] | None = None
    fovs_sample: int | None = None
    num_fovs: int | None = None
    overlap: str | None = None
    ground_truth: str | None = None
    # how it runs
    executor: str = "local"
    workers: int | None = None
    fov_timeout: int | None = None
    max_failures: int = 3
    allow_partial: bool = False
    no_wait: bool = False
    quiet: bool = False
    json: bool = False
    sample: int = 3
    # AWS Batch: the deployment, packing, memory and money
    tf_dir: str | None = None
    tf_outputs: str | None = None
    config_parameter: str | None = None
    deployment: str | None = None
    job_queue: str | None = None
    fovs_per_job: int | None = None
    child_minutes: float = 5.0
    max_memory: int = 16384
    max_cost: float | None = None
    prices: str | None = None
    # Slurm
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time: str | None = None
    mem: int | None = None
    cpus_per_task: int | None = None
    max_running: int | None = None
    sbatch_args: str = ""
    slurm_log_dir: str | None = None
    apptainer_image: str | None = None

    @classmethod
    def from_namespace(cls, parsed: argparse.Namespace, invocation: str = "") -> Options:
        """The parsed flags; a flag the parser has and this class lacks is a bug said at once."""
        values = {**vars(parsed), "invocation": invocation}
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise TypeError(f"Options has no field for the flag(s) {', '.join(unknown)}")
        return cls(**values)


def whole_number(least: int):
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


positive_int = whole_number(1)
count = whole_number(0)


def fov_names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give FOV names separated by commas")
    return names


def require(args: Options, *names: str) -> None:
    """Every flag of ``names`` was given, else one line naming the missing ones."""
    missing = [f"--{n.replace('_', '-')}" for n in names if not getattr(args, n)]
    if missing:
        raise StarfishBatchError(f"missing {', '.join(missing)} (see {PROG} run --help)")


def check_packing(args: Options) -> None:
    if args.fovs_per_job and args.fovs_per_job > 1 and args.executor != "batch":
        raise StarfishBatchError(f"--fovs-per-job {args.fovs_per_job} applies to --executor batch: "
                                 "local and Slurm runs start one worker process per FOV")
