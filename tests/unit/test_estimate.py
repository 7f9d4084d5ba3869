"""The quote's arithmetic, on samples whose answers are worked out by hand."""

from __future__ import annotations

import pytest

from starfish_batch.launcher.quote import Capacity, FovSample, estimate, quote_lines, spread

SAMPLES = [FovSample("a", 10.0, 1_000_000_000, 1, 40_000),
           FovSample("b", 20.0, 1_100_000_000, 1, 50_000),
           FovSample("c", 30.0, 900_000_000, 1, 60_000)]


def test_spread_takes_first_middle_last():
    fovs = [f"f{i}" for i in range(11)]
    assert spread(fovs, 3) == ["f0", "f5", "f10"]
    assert spread(fovs, 1) == ["f5"]
    assert spread(fovs[:2], 3) == ["f0", "f1"]


def test_local_quote():
    q = estimate(100, 97, SAMPLES, Capacity("local", slots=4, merge_memory_bytes=10**9,
                                            merge_disk_bytes=10**6))
    assert q["seconds_per_fov"] == 20.0 and (q["seconds_per_fov_min"], q["seconds_per_fov_max"]) == (10, 30)
    assert q["peak_memory_bytes"] == 1_100_000_000
    assert q["recommended_memory_mib"] == 1536  # 1.1 GB x 1.25 = 1311 MiB -> 1536
    assert q["recommended_vcpus"] == 1
    assert q["predicted_wall_seconds"] == 25 * 20.0  # 100 FOVs, 4 at once: 25 rounds of 20 s
    assert q["predicted_remaining_wall_seconds"] == 25 * 20.0  # 97 left: still 25 rounds
    assert q["predicted_cost_usd"] is None
    # 100 tables of 50 kB, the merged table (as big, plus 6 MB of chunks) and a 5% CSV
    assert q["predicted_results_bytes"] == 5_000_000 + 5_000_000 + 6_000_000 + 250_000
    assert q["merge_fits_memory"] is True and q["merge_fits_disk"] is False  # needs 11.25 MB
    text = "\n".join(quote_lines(q))
    assert "does NOT fit its disk" in text and "sampled 3 of 100 FOVs (a, b, c)" in text


def test_batch_quote_prices_the_job_definition_and_picks_a_fargate_pair():
    cap = Capacity("batch", slots=16, job_vcpus=1, job_memory_mib=2048, compute_type="FARGATE")
    big = [FovSample("a", 36.0, 7_000_000_000, 1, 1)]
    q = estimate(1000, 999, big, cap, hourly=lambda vcpus, mib: vcpus * 1.0 + mib / 1024 * 0.5)
    # 36 s a FOV after Fargate's 30 s container start: children of 7 FOVs (about 5 min), 143 of
    # them; $2 an hour for each child's start-up once and each FOV's 36 s
    assert q["fovs_per_job"] == 7 and q["children"] == 143
    assert q["predicted_cost_usd"] == pytest.approx(2 * (143 * 30 + 1000 * 36) / 3600, abs=1e-4)
    assert q["predicted_remaining_cost_usd"] == pytest.approx(2 * (143 * 30 + 999 * 36) / 3600, abs=1e-4)
    assert q["unpacked_cost_usd"] == pytest.approx(2 * 1000 * (30 + 36) / 3600, abs=1e-4)
    assert q["predicted_wall_seconds"] == 9 * (30 + 7 * 36.0)  # ceil(143 / 16) rounds
    # 7 GB x 1.25 = 8345 MiB -> 12288, which Fargate offers from 2 vCPUs
    assert (q["recommended_vcpus"], q["recommended_memory_mib"]) == (2, 12288)
    assert q["merge_fits_memory"] is None  # unknown capacity is said, not guessed
