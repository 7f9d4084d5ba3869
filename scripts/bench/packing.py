#!/usr/bin/env python3
"""One process-fov child running 4 FOVs against four children running one each, from S3.

    python scripts/bench/packing.py [--shape 512x512] [--fovs 4] [--repeats 1] [--image IMAGE]

A demo experiment of ``--fovs`` FOVs is uploaded to a moto server started here on 127.0.0.1.
Two runs of the same recipe process them through the real worker, one child after the other,
each child started as Batch starts one (``RUN_MANIFEST_URL`` + ``AWS_BATCH_JOB_ARRAY_INDEX``):
a run with ``fovs_per_job = --fovs`` (one child) and a run with one FOV per child. It prints
both wall times and their ratio (target <= 0.6), and checks that both runs wrote the same tables.

Each child is measured twice over:
- **as a process** on this machine's virtualenv: Python's start, ``import starfish``, the S3
  client and the manifest are the fixed cost a packed child pays once;
- **as a container** of the process-fov image (``podman run``, as a Batch child runs), when the
  image is in the e2e container storage (``make e2e-setup``, or ``E2E_KEEP=1 make e2e``; else
  skipped and said): a container's start is added to that fixed cost. Here podman's vfs driver
  copies the image (about 520 MB) for each container, some seconds; on Fargate each child
  pulls and unpacks the whole image instead (not measured: no registry), which costs more,
  so there the ratio is lower still; on EC2 with the image cached and an overlay driver a
  container starts faster than here, and the ratio lies between the two figures.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from starfish_batch.core.contract import PROCESS_FOV, worker_env
from starfish_batch.demo.experiment import write_demo_experiment
from starfish_batch.launcher.executors.local import worker_command
from starfish_batch.launcher.runs import new_run

REPO = Path(__file__).resolve().parents[2]
BUCKET, RESULTS = "bench-data", "bench-results"
TARGET_RATIO = 0.6
DEFAULT_IMAGE = "localhost/starfish-batch-process-fov:e2e"  # what make e2e-setup builds
CHILD_ENV = ("RUN_MANIFEST_URL", "RUN_MANIFEST_SHA256", "AWS_BATCH_JOB_ARRAY_INDEX", "AWS_ACCESS_KEY_ID",
             "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_EC2_METADATA_DISABLED")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="512x512", help="tile height x width (default 512x512)")
    parser.add_argument("--fovs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--recipe", default=str(REPO / "examples" / "iss_recipe.py"))
    parser.add_argument("--image", default=DEFAULT_IMAGE, help=f"process-fov image (default {DEFAULT_IMAGE})")
    parser.add_argument("--state", default=os.environ.get("E2E_STATE", str(REPO / "build" / "e2e-containers")),
                        help="podman storage of the image (default $E2E_STATE or build/e2e-containers)")
    args = parser.parse_args()
    height, width = (int(v) for v in args.shape.lower().split("x"))

    from moto.server import ThreadedMotoServer  # lazy: moto ~0.6 s

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://{host}:{port}",
           "AWS_EC2_METADATA_DISABLED": "true"}
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        env.pop(name, None)
    os.environ.clear()
    os.environ.update(env)  # this process talks to the emulator too, with dummy credentials
    try:
        return _bench(args, env, height, width)
    finally:
        server.stop()


def _bench(args, env: dict[str, str], height: int, width: int) -> int:
    import boto3  # lazy: boto3 ~1 s

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.create_bucket(Bucket=RESULTS)
    with tempfile.TemporaryDirectory(prefix="bench-packing-") as tmp:
        experiment = write_demo_experiment(Path(tmp) / "exp", n_fovs=args.fovs, shape=(height, width),
                                           n_spots=200, seed=1)
        for path in sorted(experiment.parent.iterdir()):
            s3.upload_file(str(path), BUCKET, f"exp/{path.name}")
        url = f"s3://{BUCKET}/exp/{experiment.name}"

        modes = {"process": worker_command(PROCESS_FOV)}
        podman_env, why_not = _podman(args)
        if podman_env is not None:
            modes["container"] = ["podman", "run", "--rm", "--network", "host",
                                  *(f"--env={name}" for name in CHILD_ENV), args.image, PROCESS_FOV]

        def run(command: list[str], per_job: int, name: str) -> float:
            manifest, manifest_url = new_run(url, args.recipe, f"s3://{RESULTS}/runs", run_id=name,
                                             fovs_per_job=per_job)
            start = time.perf_counter()
            for index in range(manifest.n_jobs):
                proc = subprocess.run(command, capture_output=True, text=True,
                                      env={**env, **(podman_env or {}), **worker_env(manifest_url, manifest.sha256),
                                           "AWS_BATCH_JOB_ARRAY_INDEX": str(index)})
                if proc.returncode != 0:
                    sys.stderr.write(proc.stderr[-2000:])
                    raise SystemExit(f"{name}: child {index} failed")
            return time.perf_counter() - start

        figures = {}
        for mode, command in modes.items():
            packed, single = [], []
            for rep in range(args.repeats):
                single.append(run(command, 1, f"{mode}-single-{rep}"))
                packed.append(run(command, args.fovs, f"{mode}-packed-{rep}"))
            figures[mode] = (statistics.median(packed), statistics.median(single),
                             _same_tables(s3, args.fovs, args.repeats, mode))
    print(f"process-fov from S3 (moto on 127.0.0.1), {args.fovs} FOVs of {height} x {width} "
          f"(4 rounds x 4 channels), children one after another, median of {args.repeats}")
    for mode, (one, many, same) in figures.items():
        ratio = one / many
        print(f"  each child a {mode}" + (f" of {args.image}" if mode == "container" else " on this virtualenv"))
        print(f"    {args.fovs} children of 1 FOV: {many:7.2f} s wall")
        print(f"    1 child of {args.fovs} FOVs:    {one:7.2f} s wall")
        print(f"    ratio: {ratio:.2f} (target <= {TARGET_RATIO})  {'OK' if ratio <= TARGET_RATIO else 'MISSED'}")
        print(f"    every FOV's table equal between the two runs: {'yes' if same else 'NO'}")
    if why_not:
        print(f"  each child a container: skipped ({why_not})")
    return 0 if all(same for _, _, same in figures.values()) else 1


def _podman(args) -> tuple[dict[str, str] | None, str | None]:
    """podman's configuration for the e2e storage holding ``args.image``, or why there is none."""
    if shutil.which("podman") is None:
        return None, "podman is not installed: make e2e-setup"
    state = Path(args.state)
    if not (state / "storage.conf").exists():
        return None, f"no container storage at {state}: make e2e-setup, or E2E_KEEP=1 make e2e"
    env = {"CONTAINERS_CONF": str(state / "containers.conf"), "CONTAINERS_STORAGE_CONF": str(state / "storage.conf")}
    found = subprocess.run(["podman", "image", "exists", args.image], env={**os.environ, **env})
    if found.returncode != 0:
        return None, f"no image {args.image} in {state}: make e2e-setup, or E2E_KEEP=1 make e2e"
    return env, None


def _same_tables(s3, n_fovs: int, repeats: int, mode: str) -> bool:
    """The packed and the unpacked run wrote the same table for every FOV (values, coordinates)."""
    import xarray as xr  # lazy: xarray ~1.7 s

    def tables(run: str, tmp: str) -> dict[str, xr.Dataset]:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=RESULTS, Prefix=f"runs/{run}/fovs/")["Contents"]]
        found = {}
        for key in keys:
            if key.endswith(".nc"):
                local = f"{tmp}/{run}-{key.rsplit('/', 1)[1]}"
                s3.download_file(RESULTS, key, local)
                found[key.rsplit("/", 1)[1]] = xr.load_dataarray(local)
        return found

    with tempfile.TemporaryDirectory(prefix="bench-packing-tables-") as tmp:
        for r in range(repeats):
            single, packed = tables(f"{mode}-single-{r}", tmp), tables(f"{mode}-packed-{r}", tmp)
            if len(packed) != n_fovs or single.keys() != packed.keys():
                return False
            if not all(single[k].equals(packed[k]) for k in single):
                return False
    return True


if __name__ == "__main__":
    sys.exit(main())
