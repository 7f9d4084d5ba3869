"""What the launcher's flags may hold: the argparse types of its values and the checks that
need several flags at once. The parsed flags travel as argparse's ``Namespace``."""

from __future__ import annotations

import argparse

from starfish_batch.core.contract import LAUNCHER as PROG
from starfish_batch.core.errors import StarfishBatchError


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


def require(args: argparse.Namespace, *names: str) -> None:
    """Every flag of ``names`` was given, else one line naming the missing ones."""
    missing = [f"--{n.replace('_', '-')}" for n in names if not getattr(args, n)]
    if missing:
        raise StarfishBatchError(f"missing {', '.join(missing)} (see {PROG} run --help)")


def check_packing(args: argparse.Namespace) -> None:
    if args.fovs_per_job and args.fovs_per_job > 1 and args.executor != "batch":
        raise StarfishBatchError(f"--fovs-per-job {args.fovs_per_job} applies to --executor batch: "
                                 "local and Slurm runs start one worker process per FOV")
