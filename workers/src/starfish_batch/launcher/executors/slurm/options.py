"""The Slurm executor's settings: one validated object built from the launcher's flags, and the
defaults a run takes from its own quote (the FOVs an ``estimate`` sampled) where it has one."""

from __future__ import annotations

import argparse
import math
import re
import shlex
import shutil
import statistics
from dataclasses import dataclass, field

from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.launcher.options import Options
from starfish_batch.launcher.pricing import recommend_memory_mib

DEFAULT_MEMORY_MIB = 4096  # as the Terraform module's process_fov: the ISS recipe peaks near 1.1 GB
DEFAULT_MERGE_MEMORY_MIB = 4096
DEFAULT_CPUS = 1
TIME_OVER_SLOWEST = 3  # a quoted run's time limit: three times its slowest sampled FOV ...
MIN_TIME_MINUTES = 10  # ... and at least this
_TIME_RE = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$")


@dataclass
class SlurmOptions:
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time: str | None = None  # sbatch --time: minutes, [D-]HH:MM:SS, ...
    memory_mib: int | None = None  # None: the quote's recommendation, else DEFAULT_MEMORY_MIB
    cpus: int | None = None
    max_running: int | None = None  # the array's %LIMIT
    extra: list[str] = field(default_factory=list)  # more sbatch arguments, as typed
    log_dir: str | None = None
    image: str | None = None  # an apptainer/singularity image with the package (workers/Dockerfile)

    def sbatch_options(self) -> list[str]:
        """The options every job of the run gets (memory and CPUs are per job)."""
        found = []
        for flag, value in (("--partition", self.partition), ("--account", self.account),
                            ("--qos", self.qos), ("--time", self.time)):
            if value:
                found.append(f"{flag}={value}")
        return found + list(self.extra)

    def flags(self) -> str:
        """These options as launcher flags, for the commands we print (resume, status, cancel)."""
        parts = []
        for flag, value in (("--partition", self.partition), ("--account", self.account),
                            ("--qos", self.qos), ("--time", self.time),
                            ("--mem", self.memory_mib), ("--cpus-per-task", self.cpus),
                            ("--max-running", self.max_running), ("--slurm-log-dir", self.log_dir),
                            ("--apptainer-image", self.image)):
            if value:
                parts.append(f"{flag} {shlex.quote(str(value))}")
        if self.extra:
            parts.append(f"--sbatch-args={shlex.quote(shlex.join(self.extra))}")  # "=": its value starts with -
        return " ".join(parts)


def _memory(text: str) -> int:
    """``4096``, ``4096M``, ``4G`` -> MiB."""
    match = re.fullmatch(r"(\d+)([MmGg]?)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a memory size (MiB, or with M or G: 4096, 4G)")
    value = int(match.group(1)) * (1024 if match.group(2).lower() == "g" else 1)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give at least 1 MiB")
    return value


def _time(text: str) -> str:
    if not _TIME_RE.match(text.strip()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a Slurm time limit (minutes, MM:SS, HH:MM:SS "
                                         "or D-HH[:MM[:SS]])")
    return text.strip()


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: give at least 1")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``run`` command's Slurm flags (named as sbatch names them)."""
    group = parser.add_argument_group("slurm (--executor slurm)")
    group.add_argument("--partition", help="slurm: the partition (default: the cluster's default)")
    group.add_argument("--account", help="slurm: the account to charge")
    group.add_argument("--qos", help="slurm: the quality of service")
    group.add_argument("--time", type=_time, help="slurm: each job's time limit (sbatch --time; default: "
                                                  "3x the slowest FOV of the run's estimate, else the partition's)")
    group.add_argument("--mem", type=_memory, metavar="MIB",
                       help=f"slurm: memory per FOV (default: the run's estimate, else {DEFAULT_MEMORY_MIB}); "
                            "FOVs out of memory are resubmitted with twice as much, up to --max-memory")
    group.add_argument("--cpus-per-task", type=_positive, metavar="N", dest="cpus_per_task",
                       help="slurm: CPUs per FOV (default: the run's estimate, else 1)")
    group.add_argument("--max-running", type=_positive, metavar="N",
                       help="slurm: FOVs running at once at most (the array's %%N)")
    group.add_argument("--sbatch-args", metavar="ARGS", default="",
                       help="slurm: more sbatch arguments for every job, as one string after = "
                            "(e.g. --sbatch-args=\"--constraint=avx2 --exclude=node7\")")
    group.add_argument("--slurm-log-dir", metavar="DIR",
                       help="slurm: a folder every node can write, for the jobs' output (default: "
                            "<run>/logs; required with s3:// results)")
    group.add_argument("--apptainer-image", metavar="SIF",
                       help="slurm: run the workers in this apptainer/singularity image of workers/Dockerfile "
                            "(default: this launcher's own Python environment, which the nodes must see)")


def from_args(args: Options) -> SlurmOptions:
    try:
        extra = shlex.split(getattr(args, "sbatch_args", "") or "")
    except ValueError as exc:
        raise StarfishBatchError(f"--sbatch-args: {exc}") from None
    for arg in extra:
        if arg.split("=", 1)[0] in ("--array", "-a", "--dependency", "-d", "--output", "-o", "--error", "-e",
                                    "--parsable", "--wrap", "--export"):
            raise StarfishBatchError(f"--sbatch-args {arg}: the launcher sets {arg.split('=', 1)[0]} itself")
    time = getattr(args, "time", None)
    fov_timeout = getattr(args, "fov_timeout", None)
    if fov_timeout is not None:  # the same flag on every executor: here each job's time limit
        if time is not None:
            raise StarfishBatchError(f"--fov-timeout {fov_timeout} and --time {time} both set each job's "
                                     "time limit on Slurm: give one of them")
        time = str(math.ceil(fov_timeout / 60))  # Slurm counts whole minutes
    return SlurmOptions(
        partition=getattr(args, "partition", None), account=getattr(args, "account", None),
        qos=getattr(args, "qos", None), time=time,
        memory_mib=getattr(args, "mem", None), cpus=getattr(args, "cpus_per_task", None),
        max_running=getattr(args, "max_running", None), extra=extra,
        log_dir=getattr(args, "slurm_log_dir", None), image=getattr(args, "apptainer_image", None),
    )


def quoted_defaults(records) -> dict:
    """What a run's estimate measured (its sampled FOVs' records): the memory the quote
    recommends, their CPUs, and a time limit of ``TIME_OVER_SLOWEST`` times the slowest."""
    records = [r for r in records if r.peak_memory_bytes]
    if not records:
        return {}
    slowest = max(float(r.seconds or 0) for r in records)
    minutes = max(MIN_TIME_MINUTES, math.ceil(slowest * TIME_OVER_SLOWEST / 60))
    return {"memory_mib": recommend_memory_mib(max(r.peak_memory_bytes for r in records)),
            "vcpus": max(1, round(statistics.median(float(r.cpus or 1) for r in records))),
            "time": str(minutes)}


def container_runtime() -> str:
    """apptainer, else singularity (its older name), from PATH."""
    for name in ("apptainer", "singularity"):
        if shutil.which(name):
            return name
    raise StarfishBatchError("--apptainer-image: neither apptainer nor singularity is on PATH here; "
                             "load the cluster's module, or drop the flag to run in this Python environment")
