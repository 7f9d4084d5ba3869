"""A run's bill attached to its summary, and printed for a Batch run."""

from __future__ import annotations

from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.core.manifest import Manifest
from starfish_batch.launcher.console import bill_lines, say
from starfish_batch.launcher.executors.batch.jobs import submissions
from starfish_batch.launcher.options import Options
from starfish_batch.launcher.pricing import PriceTable


def attach_bill(manifest: Manifest, make_bill) -> dict | None:
    """Add the run's bill to its summary.json; a bill that cannot be made is a warning, not a
    failed run (the results are there)."""
    from starfish_batch.launcher.bill import attach_bill as attach  # lazy: launcher.bill ~7 ms of CLI start-up

    try:
        bill = make_bill()
        attach(manifest, bill)
        return bill.to_dict()
    except StarfishBatchError as exc:
        say(f"warning: no bill for run {manifest.run_id}: {exc}")
        return None


def print_batch_bill(executor, manifest: Manifest, args: Options) -> None:
    """The bill of every submission of the run, from AWS Batch's job attempts."""
    bill = attach_bill(manifest, lambda: executor.bill(
        submissions(manifest.run_root, manifest.run_id), PriceTable.load(args.prices)))
    for line in bill_lines(bill) if bill else []:
        say(line)
