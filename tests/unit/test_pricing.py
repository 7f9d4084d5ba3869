"""Pricing and sizing arithmetic, checked against figures worked out by hand from the bundled
table's list prices (us-east-1: Fargate $0.04048 per vCPU-hour and $0.004445 per GB-hour;
EC2 On-Demand c6i/m6i/r6i.xlarge $0.17/$0.192/$0.252 an hour for 4 vCPUs)."""

from __future__ import annotations

import json

import pytest

from starfish_batch.launcher.executors.batch.usage import resources, usages
from starfish_batch.launcher.pricing import PriceTable, PricingError, Usage, bill_of, fargate_pair, recommend_memory_mib


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return PriceTable.load()


def test_fargate_prices_what_the_job_asks(table):
    # 1 vCPU x 0.04048 + 2 GB x 0.004445
    assert table.hourly("FARGATE", "us-east-1", 1, 2048) == pytest.approx(0.04937)
    assert table.hourly("FARGATE_SPOT", "us-east-1", 2, 4096) < table.hourly("FARGATE", "us-east-1", 2, 4096)


def test_ec2_job_pays_its_share_of_the_cheapest_fitting_family(table):
    # 1 vCPU, 2 GiB fits a c6i's 2 GiB per vCPU: a quarter of $0.17
    assert table.hourly("EC2", "us-east-1", 1, 2048) == pytest.approx(0.17 / 4)
    # 1 vCPU, 16 GiB: c takes 8 vCPUs' worth (0.34), m 4 (0.192), r 2 (2 x 0.252 / 4 = 0.126)
    assert table.hourly("EC2", "us-east-1", 1, 16384) == pytest.approx(0.126)
    # a family named by the module's instance_types is the only one priced
    assert table.hourly("EC2", "us-east-1", 1, 16384, ["m6i.xlarge"]) == pytest.approx(0.192)
    assert table.hourly("SPOT", "us-east-1", 1, 2048) < table.hourly("EC2", "us-east-1", 1, 2048)


def test_unknown_region_and_family_are_named(table, tmp_path):
    with pytest.raises(PricingError, match="region ap-south-2"):
        table.hourly("FARGATE", "ap-south-2", 1, 2048)
    with pytest.raises(PricingError, match="instance types g5"):
        table.hourly("EC2", "us-east-1", 1, 2048, ["g5"])
    bad = tmp_path / "prices.json"
    bad.write_text("[]")
    with pytest.raises(PricingError, match=f"price table {bad}"):
        PriceTable.load(bad)


def test_a_given_table_overrides_the_bundled_one(tmp_path):
    doc = {"date": "2027-01-01", "source": "negotiated", "regions": {
        "us-east-1": {"fargate": {"vcpu_hour": 1.0, "gb_hour": 0.5}}}}
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(doc))
    table = PriceTable.load(path)
    assert table.hourly("FARGATE", "us-east-1", 2, 3072) == pytest.approx(2 * 1.0 + 3 * 0.5)
    assert "given price table mine.json of 2027-01-01 (negotiated)" in table.describe()


def test_bill_sums_attempts_and_counts_retries():
    found = [Usage("a", 1, 2048, 1800), Usage("a", 1, 2048, 1800), Usage("b", 2, 4096, 3600)]
    bill = bill_of(found, lambda u: PriceTable.load().hourly("FARGATE", "us-east-1", u.vcpus, u.memory_mib))
    assert (bill.jobs, bill.attempts, bill.retries) == (2, 3, 1)
    assert bill.vcpu_hours == pytest.approx(0.5 + 0.5 + 2)
    assert bill.gb_hours == pytest.approx(2 * 0.5 * 2 + 4 * 1)
    assert bill.cost_usd == pytest.approx(3 * 0.04048 + 6 * 0.004445)
    assert bill_of(found).cost_usd is None


@pytest.mark.parametrize(("peak", "expected"), [
    (1.1e9, 1536),     # 1.1 GB x 1.25 = 1311 MiB -> 1536
    (3.3e9, 4096),     # 3934 MiB -> 4096
    (100e6, 512),      # at least 512 MiB
    (7e9, 12288),      # 8345 MiB -> 12288
])
def test_recommended_memory_is_the_next_size_up_with_headroom(peak, expected):
    assert recommend_memory_mib(peak) == expected


@pytest.mark.parametrize(("vcpus", "memory", "pair"), [
    (1, 3000, (1, 3072)),
    (0.25, 3000, (0.5, 3072)),   # 0.25 vCPU offers at most 2048 MiB
    (1, 9000, (2, 9216)),        # 1 vCPU offers at most 8192 MiB
    (4, 40000, (8, 40960)),      # 8 vCPUs: 4096 MiB steps
    (2, 1024, (2, 4096)),        # 2 vCPUs start at 4096 MiB
])
def test_fargate_pair_is_valid_and_smallest(vcpus, memory, pair):
    assert fargate_pair(vcpus, memory) == pair


def test_no_fargate_size_is_an_error():
    with pytest.raises(ValueError, match="EC2"):
        fargate_pair(16, 130_000)


def test_usage_from_the_documented_describe_jobs_payload():
    # The shape AWS documents for DescribeJobs (JobDetail): resourceRequirements, and one
    # entry per attempt with startedAt/stoppedAt in epoch milliseconds (a retried child).
    job = {
        "jobId": "abc:3", "status": "SUCCEEDED", "startedAt": 1_700_000_000_000,
        "container": {"resourceRequirements": [{"type": "VCPU", "value": "2"},
                                               {"type": "MEMORY", "value": "8192"}]},
        "attempts": [
            {"startedAt": 1_700_000_000_000, "stoppedAt": 1_700_000_060_000,
             "statusReason": "Host EC2 (instance i-0) terminated.", "container": {"exitCode": None}},
            {"startedAt": 1_700_000_100_000, "stoppedAt": 1_700_000_220_000, "container": {"exitCode": 0}},
        ],
    }
    assert resources(job) == (2.0, 8192.0)
    assert [u.seconds for u in usages(job, now_ms=0)] == [60.0, 120.0]
    assert resources({"container": {"vcpus": 1, "memory": 2048}}) == (1.0, 2048.0)
    running = {"jobId": "x", "container": {}, "attempts": [{"startedAt": 1_000}]}
    assert usages(running, now_ms=31_000)[0].seconds == 30.0
