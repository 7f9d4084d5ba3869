"""The bill of a run, after it: added to its ``summary.json`` and printed in the closing lines.

On AWS Batch it comes from the described job attempts (``BatchExecutor.bill``); locally from
the FOV records (each worker's seconds, CPUs and peak memory), with no dollar figure: a
laptop's time is not billed per hour.
"""

from __future__ import annotations

import json

from starfish_batch.core import storage
from starfish_batch.core.contract import FOVS_DIR, SUMMARY_NAME
from starfish_batch.core.manifest import Manifest
from starfish_batch.core.records import FovRecord
from starfish_batch.launcher.pricing import Bill, Usage, bill_of

MIB = 2**20
BILL_KEY = "bill"


def fov_records(manifest: Manifest, fovs: list[str] | None = None) -> dict[str, FovRecord]:
    """The records written so far for ``fovs`` (default: every FOV of the run)."""
    root = storage.join(manifest.run_root, FOVS_DIR)
    names = set(storage.list_names(root))
    found = {}
    for fov in fovs if fovs is not None else manifest.run_fovs:
        if f"{manifest.keys[fov]}.json" in names:
            url = manifest.fov_url(fov, ".json")
            found[fov] = FovRecord.from_json(storage.read_bytes(url), url)
    return found


def records_bill(manifest: Manifest, note: str) -> Bill:
    """CPU-hours and GB-hours (peak memory) of the FOVs, from their records: the bill of an
    executor that has no accounting of its own (local, Slurm)."""
    usages = [Usage(job=fov, vcpus=float(r.cpus or 1), memory_mib=(r.peak_memory_bytes or 0) / MIB,
                    seconds=float(r.seconds or 0))
              for fov, r in fov_records(manifest).items()]
    return bill_of(usages, None, note=note)


def local_bill(manifest: Manifest) -> Bill:
    """vCPU-hours and GB-hours (peak memory) of the FOVs a local run processed."""
    return records_bill(manifest, "local run: each FOV's CPUs and peak memory for its seconds; "
                                  "no cost, a local machine is not billed per hour")


def attach_bill(manifest: Manifest, bill: Bill) -> None:
    """Add ``bill`` to the run's summary.json, keeping every other key as the merge wrote it."""
    url = storage.join(manifest.run_root, SUMMARY_NAME)
    doc = json.loads(storage.read_bytes(url))
    doc[BILL_KEY] = bill.to_dict()
    storage.write_text(url, json.dumps(doc, indent=1) + "\n")
