"""A quote before a run: what a few FOVs spread over the experiment took, turned into the
whole run's time, memory, cost and results size (pure arithmetic; the CLI runs the sample).

The sample is processed as part of a real run (a resume manifest over just those FOVs), so
its outputs are kept: the run is finished with ``--resume RUN_ID``, which reuses the recipe
stored with the run (checked by its sha256), so a quote and the run it quotes never mix two
recipes.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

from starfish_batch.launcher import packing
from starfish_batch.launcher.pricing import fargate_pair, recommend_memory_mib

DEFAULT_SAMPLE = 3
MERGE_BASE_MEMORY = 300 * 10**6  # the merge streams FOV tables: it peaks near 250 MB (make bench)
MERGE_BLOCK_TABLES = 4  # and holds a few FOV tables' worth in a block
MERGED_OVER_FOV_TABLES = 1.0  # the merged table holds every FOV table's features once
MERGED_OVERHEAD_BYTES = 6 * 10**6  # plus whole HDF5 chunks allocated up front (5.8 MB on the demo)
SPOTS_CSV_OVER_TABLES = 0.05  # decoded_spots.csv.gz beside it (gzip text; 3% on the demo)


@dataclass(frozen=True)
class FovSample:
    """One sampled FOV: its worker's wall seconds, its record's peak memory and CPUs, and the
    bytes of its outputs (table and record)."""

    fov: str
    seconds: float
    peak_memory_bytes: int
    cpus: float
    output_bytes: int
    work_seconds: float | None = None  # the record's own seconds (load, recipe, write): no start-up


@dataclass(frozen=True)
class Capacity:
    """Where the whole run would go: how many FOVs at once, each job's size, the merge's room."""

    executor: str  # "local" or "batch"
    slots: int  # FOVs processed at once: local workers, or max vCPUs / vCPUs per job
    job_vcpus: float | None = None  # batch: the process-fov job definition's
    job_memory_mib: float | None = None
    compute_type: str | None = None  # batch: EC2, SPOT, FARGATE or FARGATE_SPOT
    merge_memory_bytes: int | None = None  # None: unknown
    merge_disk_bytes: int | None = None
    image_bytes: int | None = None  # batch: the process-fov image's compressed size (ECR), if found


def spread(fovs: list[str], n: int) -> list[str]:
    """``n`` FOVs evenly spaced over the experiment's order, first and last included."""
    if n >= len(fovs):
        return list(fovs)
    if n == 1:
        return [fovs[len(fovs) // 2]]
    return [fovs[round(i * (len(fovs) - 1) / (n - 1))] for i in range(n)]


def estimate(n_fovs: int, n_remaining: int, samples: list[FovSample], capacity: Capacity,
             hourly: Callable[[float, float], float] | None = None, fovs_per_job: int | None = None,
             child_minutes: float = packing.DEFAULT_CHILD_MINUTES) -> dict:
    """The quote as one JSON-ready object (docs/costs.md names each key).

    ``hourly(vcpus, memory_mib)`` prices one job an hour on Batch (None locally). Each child
    pays its start-up once (``packing``), then its FOVs' own seconds: ``fovs_per_job`` FOVs
    (None: chosen for children of about ``child_minutes``).
    """
    seconds = [s.seconds for s in samples]
    median = statistics.median(seconds)
    work = statistics.median(s.work_seconds if s.work_seconds is not None else s.seconds for s in samples)
    imports = statistics.median(max(0.0, s.seconds - s.work_seconds) if s.work_seconds is not None else 0.0
                                for s in samples)
    start = packing.startup(capacity.compute_type if capacity.executor == "batch" else None, imports,
                            capacity.image_bytes)
    if fovs_per_job or capacity.executor != "batch":  # a local run starts one process per FOV
        per_job = fovs_per_job or 1
    else:
        per_job = packing.choose(n_remaining or n_fovs, work, start.seconds, capacity.slots, child_minutes)
    child_seconds = start.seconds + per_job * work
    peak = max(s.peak_memory_bytes for s in samples)
    memory = recommend_memory_mib(peak)
    vcpus = capacity.job_vcpus or statistics.median(s.cpus for s in samples) or 1
    fargate = (capacity.compute_type or "").startswith("FARGATE")
    if fargate:
        vcpus, memory = fargate_pair(vcpus, memory)
    slots = max(1, capacity.slots)
    cost = remaining_cost = unpacked_cost = None

    def wall(n: int, per: int) -> float:  # children in waves of `slots`, each start-up + its FOVs
        return math.ceil(packing.children(n, per) / slots) * (start.seconds + per * work)

    def busy(n: int, per: int) -> float:  # every child's seconds, each start-up counted once
        return packing.children(n, per) * start.seconds + n * work

    if hourly is not None:
        per_second = hourly(capacity.job_vcpus or vcpus, capacity.job_memory_mib or memory) / 3600
        cost, remaining_cost = round(per_second * busy(n_fovs, per_job), 4), round(
            per_second * busy(n_remaining, per_job), 4)
        unpacked_cost = round(per_second * busy(n_fovs, 1), 4)
    table = statistics.mean(s.output_bytes for s in samples)
    merged = table * n_fovs * MERGED_OVER_FOV_TABLES + MERGED_OVERHEAD_BYTES
    csv = table * n_fovs * SPOTS_CSV_OVER_TABLES
    merge_memory = int(MERGE_BASE_MEMORY + MERGE_BLOCK_TABLES * max(s.output_bytes for s in samples))
    merge_disk = int(merged + csv)  # staged on local disk before upload
    return {
        "executor": capacity.executor,
        "compute_type": capacity.compute_type,
        "fovs": n_fovs,
        "sampled_fovs": [s.fov for s in samples],
        "fovs_remaining": n_remaining,
        "seconds_per_fov": round(median, 3),
        "seconds_per_fov_min": round(min(seconds), 3),
        "seconds_per_fov_max": round(max(seconds), 3),
        "peak_memory_bytes": int(peak),
        "recommended_memory_mib": int(memory),
        "recommended_vcpus": int(vcpus) if float(vcpus).is_integer() else vcpus,
        "fovs_at_once": slots,
        "seconds_per_fov_work": round(work, 3),
        "startup_seconds_per_child": start.to_dict(),
        "fovs_per_job": per_job,
        "children": packing.children(n_remaining or n_fovs, per_job),
        "seconds_per_child": round(child_seconds, 1),
        "predicted_wall_seconds": round(wall(n_fovs, per_job), 1),
        "predicted_remaining_wall_seconds": round(wall(n_remaining, per_job), 1),
        "predicted_cost_usd": cost,
        "predicted_remaining_cost_usd": remaining_cost,
        "unpacked_wall_seconds": round(wall(n_fovs, 1), 1),
        "unpacked_cost_usd": unpacked_cost,
        "predicted_results_bytes": int(table * n_fovs + merged + csv),
        "merge_memory_bytes_needed": merge_memory,
        "merge_disk_bytes_needed": merge_disk,
        "merge_fits_memory": _fits(merge_memory, capacity.merge_memory_bytes),
        "merge_fits_disk": _fits(merge_disk, capacity.merge_disk_bytes),
    }


def _fits(needed: int, available: int | None) -> bool | None:
    return None if available is None else needed <= available


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"  # pragma: no cover


def _duration(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def quote_lines(quote: dict) -> list[str]:
    """The quote in words, for the terminal."""
    fits = {True: "fits", False: "does NOT fit", None: "cannot be checked"}
    lines = [
        f"sampled {len(quote['sampled_fovs'])} of {quote['fovs']} FOVs ({', '.join(quote['sampled_fovs'])})",
        f"  seconds per FOV: median {quote['seconds_per_fov']:.1f} s "
        f"(min {quote['seconds_per_fov_min']:.1f}, max {quote['seconds_per_fov_max']:.1f})",
        f"  peak memory: {_size(quote['peak_memory_bytes'])}; recommended process-fov size: "
        f"{quote['recommended_vcpus']} vCPU, {quote['recommended_memory_mib']} MiB",
        f"  predicted wall time, {quote['fovs_at_once']} FOVs at once: {_duration(quote['predicted_wall_seconds'])} "
        f"from scratch, {_duration(quote['predicted_remaining_wall_seconds'])} for the "
        f"{quote['fovs_remaining']} FOVs left (plus the merge)",
    ]
    start = quote["startup_seconds_per_child"]
    if quote["executor"] != "batch":
        lines.append(f"  start-up per worker: Python and starfish import {start['python_import']:.1f} s (measured); "
                     f"each FOV's own work: {quote['seconds_per_fov_work']:.1f} s")
    else:
        pull = (f"image pull {start['image_pull']:.0f} s ({_size(start['image_bytes'])} at "
                f"{_size(start['pull_bytes_per_second'])}/s)" if start["image_pull"] else
                "image pull 0 s (" + ("cached on the host" if start["image_bytes"] or
                                      not str(quote.get("compute_type", "")).startswith("FARGATE")
                                      else "image size unknown") + ")")
        lines.append(f"  start-up per child: {start['seconds']:.1f} s = container start "
                     f"{start['container_start']:.0f} s + {pull} + Python and starfish import "
                     f"{start['python_import']:.1f} s (measured); "
                     f"each FOV's own work: {quote['seconds_per_fov_work']:.1f} s")
        unpacked = _duration(quote["unpacked_wall_seconds"]) + (
            f", ${quote['unpacked_cost_usd']:.2f}" if quote["unpacked_cost_usd"] is not None else "")
        packed = packing.launch_line(quote["fovs"], quote["fovs_per_job"], quote["seconds_per_child"])
        lines.append(f"  packing: {packed}; with 1 FOV per child: {unpacked}")
    if quote["executor"] == "batch":
        lines.append(f"  to use that size: process_fov_vcpus = {quote['recommended_vcpus']} and "
                     f"process_fov_memory = {quote['recommended_memory_mib']} in the Terraform module")
    if quote["predicted_cost_usd"] is not None:
        lines.append(f"  predicted compute cost (an estimate, list prices): ${quote['predicted_cost_usd']:.2f} "
                     f"from scratch, ${quote['predicted_remaining_cost_usd']:.2f} for what is left")
    lines += [
        f"  predicted results: {_size(quote['predicted_results_bytes'])}",
        f"  the merge {fits[quote['merge_fits_memory']]} its memory "
        f"(needs about {_size(quote['merge_memory_bytes_needed'])}) and "
        f"{fits[quote['merge_fits_disk']]} its disk (needs about {_size(quote['merge_disk_bytes_needed'])})",
    ]
    return lines
