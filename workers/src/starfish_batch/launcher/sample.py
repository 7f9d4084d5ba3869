"""``estimate``: process a sample of FOVs as part of a new run, through the executor a run
uses, then quote the whole run from it (``estimate`` holds the arithmetic).

The sample is a resume manifest over the sampled FOVs of a new run, so the real run is
``run --resume RUN_ID``: it processes only the FOVs left, with the recipe stored with the run.
"""

from __future__ import annotations

import re
import shutil

from starfish_batch.core import resources, storage
from starfish_batch.core.contract import FOVS_DIR
from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.core.manifest import Manifest
from starfish_batch.launcher.bill import fov_records
from starfish_batch.launcher.executors.local import default_workers
from starfish_batch.launcher.quote import Capacity, FovSample

FARGATE_DEFAULT_DISK_GIB = 20  # a Fargate job's disk without ephemeralStorage


def local_capacity(n_fovs: int, workers: int | None, results_url: str) -> Capacity:
    """The workers a local run of ``n_fovs`` would start, this machine's memory and disk."""
    disk = None
    if not storage.is_s3(results_url):
        disk = shutil.disk_usage(storage.absolute(results_url)).free
    return Capacity(executor="local", slots=workers or default_workers(n_fovs),
                    merge_memory_bytes=resources.available_memory_bytes(), merge_disk_bytes=disk)


def batch_capacity(executor) -> Capacity:
    """FOVs at once (max vCPUs over each job's vCPUs), job sizes and the merge's room, from
    the compute environment and the job definitions."""
    env = executor.compute_environment()
    job = executor.job_size(executor.outputs.process_fov_job_definition_arn)
    merge = executor.job_size(executor.outputs.merge_job_definition_arn)
    fargate = env["type"].startswith("FARGATE")
    disk_gib = merge["disk_gib"] or (FARGATE_DEFAULT_DISK_GIB if fargate else None)
    return Capacity(
        executor="batch", slots=max(1, int(env["max_vcpus"] // max(job["vcpus"], 0.25))),
        job_vcpus=job["vcpus"], job_memory_mib=job["memory_mib"], compute_type=env["type"],
        merge_memory_bytes=int(merge["memory_mib"] * 2**20) if merge["memory_mib"] else None,
        merge_disk_bytes=int(disk_gib * 2**30) if disk_gib else None,  # EC2: the instance's volume
        image_bytes=image_bytes(executor, job.get("image")),
    )


def image_bytes(executor, image: str | None) -> int | None:
    """The compressed size of an ECR image (``describe_images``' imageSizeInBytes), or None
    when it is not in ECR or cannot be described (the quote then prices no pull)."""
    match = re.fullmatch(r"\d+\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com[^/]*/([^:@]+)(?::([^@]+))?(?:@(.+))?",
                         image or "")
    if not match:
        return None
    repo, tag, digest = match.groups()
    image_id = {"imageDigest": digest} if digest else {"imageTag": tag or "latest"}
    try:
        found = executor.client("ecr").describe_images(repositoryName=repo, imageIds=[image_id])
        return int(found["imageDetails"][0]["imageSizeInBytes"])
    except Exception:  # noqa: BLE001 - a quote without a pull figure says so
        return None


def samples(manifest: Manifest, seconds: dict[str, float]) -> list[FovSample]:
    """The sampled FOVs that succeeded: wall seconds, and their records' memory and outputs."""
    records = fov_records(manifest, [f for f in manifest.run_fovs if f in seconds])  # run order
    sizes = storage.list_sizes(storage.join(manifest.run_root, FOVS_DIR))
    found = [FovSample(fov=fov, seconds=seconds[fov], peak_memory_bytes=int(r.peak_memory_bytes or 0),
                       cpus=float(r.cpus or 1), work_seconds=r.seconds,
                       output_bytes=sizes.get(f"{manifest.keys[fov]}.nc", 0)
                       + sizes.get(f"{manifest.keys[fov]}.json", 0))
             for fov, r in records.items()]
    if not found:
        raise StarfishBatchError(f"no sampled FOV of run {manifest.run_id} wrote a record under "
                                 f"{storage.join(manifest.run_root, FOVS_DIR)}: nothing to estimate from")
    return found
