#!/usr/bin/env python3
"""Launchers racing for a dead launcher's claim: how many races end with more than one winner.

    python scripts/bench/claims.py [--races 500] [--launchers 3]

Each race: a run folder holding a ``launcher.lock`` of a process of this host that has ended,
and ``--launchers`` processes released together that each call ``RunClaim.acquire`` (the
test's own helper, tests/support/claims.py). On disk, and in S3 on a moto server started here
on 127.0.0.1. Target (issue 30): 0 double claims in 500 races of 3 launchers. moto 5.2 answers
``If-Match`` / ``If-None-Match`` on PutObject, but checks and writes without a lock of its own,
so its figure is the emulator's; AWS documents conditional writes as atomic (one of concurrent
writers gets 412 PreconditionFailed or 409 ConditionalRequestConflict).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.support import DUMMY_AWS  # noqa: E402
from tests.support.claims import dead_pid, race, stale_claim, winners  # noqa: E402
from tests.support.moto import MotoServer  # noqa: E402


def report(where: str, results: dict, seconds: float) -> bool:
    counts = winners(results)
    double = sum(n > 1 for n in counts.values())
    none = sum(n == 0 for n in counts.values())
    ok = double == 0 and none == 0
    print(f"{where}: {double} of {len(counts)} races with more than one winner, {none} with none "
          f"(target 0 and 0) {'OK' if ok else 'MISSED'}; {seconds:.1f} s", flush=True)
    return ok


def raw_conditional_races(endpoint: str, races: int, writers: int) -> int:
    """The emulator alone: ``writers`` threads PUT one key with ``If-Match`` on the same ETag at
    once; how many races let more than one through (0 where conditional writes are atomic)."""
    import boto3  # lazy: boto3 ~1 s
    from botocore.exceptions import ClientError  # lazy: botocore ~0.1-1 s

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    def write(n: int, key: str, etag: str, barrier, wins: list[int]) -> None:
        barrier.wait()
        try:
            s3.put_object(Bucket="races", Key=key, Body=f"writer {n}".encode(), IfMatch=etag)
            wins.append(n)
        except ClientError:
            pass

    doubled = 0
    for i in range(races):
        key = f"raw/{i}"
        etag = s3.put_object(Bucket="races", Key=key, Body=b"stale")["ETag"]
        barrier = threading.Barrier(writers)
        wins: list[int] = []
        threads = [threading.Thread(target=write, args=(n, key, etag, barrier, wins)) for n in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        doubled += len(wins) > 1
    return doubled


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--races", type=int, default=500)
    parser.add_argument("--launchers", type=int, default=3)
    args = parser.parse_args()
    pid = dead_pid()
    ok = True
    with tempfile.TemporaryDirectory(prefix="starfish-batch-claims-") as tmp:
        roots = []
        for i in range(args.races):
            root = Path(tmp) / f"race-{i}"
            root.mkdir()
            (root / "launcher.lock").write_bytes(stale_claim(pid))
            roots.append(str(root))
        started = time.perf_counter()
        ok &= report(f"disk, {args.launchers} launchers", race(roots, args.launchers), time.perf_counter() - started)

        import boto3  # lazy: boto3 ~1 s

        server = MotoServer(Path(tmp) / "moto", serial=True).start()  # atomic conditional writes, as AWS
        try:
            s3 = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1",
                              aws_access_key_id="test", aws_secret_access_key="test")
            s3.create_bucket(Bucket="races")
            for i in range(args.races):
                s3.put_object(Bucket="races", Key=f"runs/race-{i}/launcher.lock", Body=stale_claim(pid))
            env = DUMMY_AWS | {"AWS_ENDPOINT_URL": server.url}
            started = time.perf_counter()
            results = race([f"s3://races/runs/race-{i}" for i in range(args.races)], args.launchers, env=env)
            ok &= report(f"S3 (moto), {args.launchers} launchers", results, time.perf_counter() - started)
            doubled = raw_conditional_races(server.url, args.races, args.launchers)
            print(f"moto itself: {doubled} of {args.races} races of {args.launchers} plain If-Match PUTs with "
                  "one ETag let more than one through (AWS lets one through: the others get 412 or 409)",
                  flush=True)
        finally:
            server.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
