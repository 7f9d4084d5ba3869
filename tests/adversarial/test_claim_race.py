"""Issue 30, case 3: launchers racing for a dead launcher's claim. Taking it over was "delete,
then create", so two or three launchers could each think they held the run. Each race here is
real processes released together by a barrier; exactly one may win, every time.

`make test` runs a few dozen races on disk and in S3 (a moto server); `make bench`
(scripts/bench/claims.py) runs 500 races of 3 launchers on each and prints the count.
"""

from __future__ import annotations

import os

from tests.support.claims import dead_pid, race, stale_claim, winners

RACES = int(os.environ.get("STARFISH_BATCH_CLAIM_RACES", "30"))


def _double_wins(results) -> dict[int, list[str]]:
    counts = winners(results)
    return {i: results[i] for i, n in counts.items() if n != 1}


def test_three_launchers_taking_over_a_stale_claim_on_disk_one_wins_each_time(tmp_path):
    pid = dead_pid()
    roots = []
    for i in range(RACES):
        root = tmp_path / f"race-{i}"
        root.mkdir()
        (root / "launcher.lock").write_bytes(stale_claim(pid))
        roots.append(str(root))
    results = race(roots, launchers=3)
    assert _double_wins(results) == {}


def test_three_launchers_taking_over_a_stale_claim_in_s3_one_wins_each_time(s3_server):
    env, client = s3_server
    pid = dead_pid()
    roots = []
    for i in range(RACES):
        client.put_object(Bucket="races", Key=f"runs/race-{i}/launcher.lock", Body=stale_claim(pid))
        roots.append(f"s3://races/runs/race-{i}")
    results = race(roots, launchers=3, env=env)
    assert _double_wins(results) == {}
