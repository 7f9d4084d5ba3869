#!/usr/bin/env python3
"""What one process-fov child costs as the experiment grows, against an S3 emulator on 127.0.0.1.

    python scripts/bench/fov_io.py [--sizes 4,300,3000] [--plan-size 10000] [--shape 512x512] [--repeats 3]

One demo experiment (4 FOVs) is uploaded to a moto server started here on 127.0.0.1; wider
experiments reuse its tile sets under new FOV names (``demo.widen_experiment``), so they hold
the same images and differ only in the number of FOVs. It prints

- one child's wall time (the real worker in a fresh process, array index 0) and its number of
  S3 requests, for each size;
- the launcher's planning of the widest experiment (list the FOVs, prove one opens, write the
  manifest);
- a FOV's documents and tiles loaded by ``experiment.open_fov`` next to a plain fetch of the
  same objects with one boto3 client and 8 threads, each in a fresh process (as a worker
  starts), timed from after the imports.

Each figure is the median of ``--repeats`` runs; each target is printed with OK or MISSED.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from starfish_batch.core import storage
from starfish_batch.core.contract import PROCESS_FOV, worker_env
from starfish_batch.core.experiment import open_fov, plan
from starfish_batch.demo.experiment import widen_experiment, write_demo_experiment
from starfish_batch.launcher.executors.local import worker_command
from starfish_batch.launcher.runs import new_run

REPO = Path(__file__).resolve().parents[2]
BUCKET, RESULTS = "bench-data", "bench-results"
TARGET_CHILD_RATIO = 1.2
TARGET_LOAD_RATIO = 2.0
TARGET_PLAN_SECONDS = 10.0


class CountingS3:
    """A moto server on 127.0.0.1 that records every request it serves (method and path)."""

    def __init__(self) -> None:
        from moto.moto_server.threaded_moto_server import MotoRequestHandler  # lazy: moto ~0.6 s
        from moto.server import DomainDispatcherApplication, create_backend_app  # lazy: moto ~0.6 s
        from werkzeug.serving import make_server  # lazy: werkzeug ~0.1 s

        app = DomainDispatcherApplication(create_backend_app)
        self.requests: list[tuple[str, str]] = []
        lock = threading.Lock()

        def counting(environ, start_response):
            with lock:
                self.requests.append((environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")))
            return app(environ, start_response)

        class QuietHandler(MotoRequestHandler):
            def log_request(self, *args, **kwargs) -> None:
                pass

        self.server = make_server("127.0.0.1", 0, counting, threaded=True, request_handler=QuietHandler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join()


def median_of(repeats: int, fn) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def child(mode: str, url: str, objects: list[str]) -> int:
    """Load one FOV in this fresh process and print the seconds it took (imports excluded)."""
    import boto3  # lazy: boto3 ~1 s

    if mode == "open_fov":
        # lazy: import starfish takes seconds; only this mode needs it
        import starfish  # noqa: F401 - a worker has it imported before it loads its FOV

        start = time.perf_counter()
        open_fov(url, "fov_00000")
    else:
        start = time.perf_counter()
        client = boto3.client("s3")
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda path: client.get_object(Bucket=path.split("/", 1)[0],
                                                         Key=path.split("/", 1)[1])["Body"].read(), objects))
    print(f"{time.perf_counter() - start:.4f}")
    return 0


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        return child(sys.argv[2], sys.argv[3], sys.argv[4:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4,300,3000", help="FOVs per experiment for the child (default 4,300,3000)")
    parser.add_argument("--plan-size", type=int, default=10000, help="FOVs for the planning figure (default 10000)")
    parser.add_argument("--shape", default="512x512", help="tile height x width (default 512x512)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--recipe", default=str(REPO / "examples" / "iss_recipe.py"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    height, width = (int(v) for v in args.shape.lower().split("x"))

    server = CountingS3()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": server.url, "AWS_EC2_METADATA_DISABLED": "true"}
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        env.pop(name, None)
    os.environ.clear()
    os.environ.update(env)  # this process talks to the emulator too, with dummy credentials

    import boto3  # lazy: boto3 ~1 s

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.create_bucket(Bucket=RESULTS)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-fov-io-") as tmp:
            experiment = write_demo_experiment(Path(tmp) / "exp", n_fovs=4, shape=(height, width),
                                               n_spots=200, seed=1)
            for n in sorted({*sizes, args.plan_size}):
                widen_experiment(experiment, n, f"experiment-{n}")
            for path in sorted(experiment.parent.iterdir()):
                s3.upload_file(str(path), BUCKET, f"exp/{path.name}")

            print(f"process-fov child, one {height} x {width} FOV (4 rounds x 4 channels + dots), "
                  f"experiment in S3 (moto on 127.0.0.1), median of {args.repeats}")
            children: dict[int, tuple[float, int]] = {}
            for n in sizes:
                url = f"s3://{BUCKET}/exp/experiment-{n}.json"
                walls, counts = [], []
                for rep in range(args.repeats):
                    _, manifest_url = new_run(url, args.recipe, f"s3://{RESULTS}/runs", run_id=f"n{n}-r{rep}")
                    before = len(server.requests)
                    start = time.perf_counter()
                    proc = subprocess.run(worker_command(PROCESS_FOV), capture_output=True, text=True,
                                          env={**env, **worker_env(manifest_url), "AWS_BATCH_JOB_ARRAY_INDEX": "0"})
                    walls.append(time.perf_counter() - start)
                    counts.append(len(server.requests) - before)
                    if proc.returncode != 0:
                        print(proc.stderr[-2000:], file=sys.stderr)
                        return 1
                children[n] = (statistics.median(walls), max(counts))
                print(f"  {n:>6} FOVs: {children[n][0]:6.2f} s wall, {children[n][1]:3d} S3 requests")
            base_wall, base_requests = children[sizes[0]]
            top = sizes[-1]
            ratio = children[top][0] / base_wall
            same = len({count for _, count in children.values()}) == 1
            print(f"  child at {top} FOVs / at {sizes[0]} FOVs: {ratio:.2f}x (target <= {TARGET_CHILD_RATIO}x)  "
                  f"{verdict(ratio <= TARGET_CHILD_RATIO)}")
            print(f"  S3 requests per child independent of the FOV count: "
                  f"{sorted({c for _, c in children.values()})}  {verdict(same)}")

            url = f"s3://{BUCKET}/exp/experiment-{args.plan_size}.json"
            storage.s3_client.cache_clear()
            before = len(server.requests)
            plan_seconds, names = median_of(args.repeats, lambda: plan(url))
            plan_requests = (len(server.requests) - before) // args.repeats
            counter = iter(range(10**6))
            run_seconds, _ = median_of(args.repeats, lambda: new_run(
                url, args.recipe, f"s3://{RESULTS}/runs", run_id=f"plan-{next(counter)}"))
            print(f"launcher planning, {len(names)} FOVs in S3: list and check {plan_seconds:.2f} s "
                  f"({plan_requests} S3 requests); with recipe check and manifest write {run_seconds:.2f} s "
                  f"(target < {TARGET_PLAN_SECONDS:.0f} s)  {verdict(run_seconds < TARGET_PLAN_SECONDS)}")

            url = f"s3://{BUCKET}/exp/experiment-{top}.json"
            before = len(server.requests)
            open_fov(url, "fov_00000")
            objects = [path.lstrip("/") for method, path in server.requests[before:] if method == "GET"]

            def timed(mode: str) -> float:
                """Seconds one fresh process (imports done, no client yet) takes to load the FOV."""
                proc = subprocess.run([sys.executable, __file__, "--child", mode, url, *objects], env=env,
                                      capture_output=True, text=True, check=True)
                return float(proc.stdout.split()[-1])

            load_seconds = statistics.median(timed("open_fov") for _ in range(args.repeats * 2))
            plain_seconds = statistics.median(timed("plain") for _ in range(args.repeats * 2))
            load_ratio = load_seconds / plain_seconds
            print(f"one FOV's documents and tiles ({len(objects)} objects), each in a fresh process: open_fov "
                  f"{load_seconds:.3f} s, plain 8-thread fetch with one client {plain_seconds:.3f} s: "
                  f"{load_ratio:.2f}x (target <= {TARGET_LOAD_RATIO}x)  {verdict(load_ratio <= TARGET_LOAD_RATIO)}")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
