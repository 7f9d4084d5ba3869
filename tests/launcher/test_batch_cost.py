"""The bill of a Batch run (and, below, its out-of-memory escalation) against in-process moto.

moto's Batch without Docker starts and stops every attempt at submission, so its attempts last
no time; tests give them the start and stop times AWS documents (epoch milliseconds in
``attempts[]``) on moto's own job objects, then read everything back through the API.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from starfish_batch.launcher import cli
from starfish_batch.launcher.executors.batch import BatchExecutor
from starfish_batch.launcher.pricing import PriceTable
from starfish_batch.launcher.tf_outputs import read_outputs
from tests.support import batch as tb
from tests.support.batch import RESULTS_BUCKET, fov_names, launch, moto_job, submitted

T0 = 1_800_000_000_000  # epoch ms


def _attempts(job_id: str, *seconds: float, reason: str | None = None) -> None:
    """Give moto's job the attempts AWS would describe: one per duration, back to back."""
    start, attempts = T0, []
    for s in seconds:
        attempts.append({"container": {"exitCode": 0, "logStreamName": "x"},
                         "startedAt": start, "stoppedAt": start + int(s * 1000),
                         **({"statusReason": reason} if reason else {})})
        start += int(s * 1000) + 1000
    moto_job(job_id).attempts = attempts


def test_bill_from_described_attempts(aws):
    executor, manifest, run = submitted(aws, 3, run_id="bill")
    parent = run.process_jobs[0].job_id
    _attempts(f"{parent}:0", 600)
    _attempts(f"{parent}:1", 300, 900)  # a Spot reclaim, then the retry
    _attempts(f"{parent}:2", 1200)
    _attempts(run.merge_job_id, 360)
    moto_job(parent).attempts = []  # an array parent never runs itself
    env = executor.compute_environment()
    assert (env["type"], env["max_vcpus"]) == ("FARGATE", 16)
    bill = executor.bill([run], PriceTable.load())
    # Both job definitions ask 1 vCPU and 2048 MiB (the fixture): 3360 s in all.
    hours = (600 + 300 + 900 + 1200 + 360) / 3600
    assert (bill.jobs, bill.attempts, bill.retries) == (4, 5, 1)
    assert bill.vcpu_hours == pytest.approx(hours, abs=1e-5)
    assert bill.gb_hours == pytest.approx(2 * hours, abs=1e-5)
    assert bill.cost_usd == pytest.approx(hours * (0.04048 + 2 * 0.004445), abs=1e-5)
    assert "an estimate" in bill.note and "prices-2026-11.json" in bill.prices


def test_launcher_closing_lines_and_summary_carry_the_bill(aws, capsys):
    root = "runs/paid"
    aws.s3.put_object(Bucket=RESULTS_BUCKET, Key=f"{root}/merged_decoded_fovs.nc", Body=b"x")
    summary = {"run_id": "paid", "n_fovs": 2, "n_fovs_merged": 2, "n_features": 4, "n_spots": 3,
               "notes": ["kept"]}
    aws.s3.put_object(Bucket=RESULTS_BUCKET, Key=f"{root}/summary.json", Body=json.dumps(summary))
    assert launch(aws, "--run-id", "paid", fovs=fov_names(2)) == 0
    err = capsys.readouterr().err
    doc = json.loads(aws.s3.get_object(Bucket=RESULTS_BUCKET, Key=f"{root}/summary.json")["Body"].read())
    bill = doc["bill"]
    assert doc["notes"] == ["kept"]  # the merge's summary is kept as it was
    assert bill["attempts"] == 3 and bill["retries"] == 0 and bill["cost_usd"] is not None
    assert "estimated cost: $" in err and "an estimate" in err and "prices-2026-11.json" in err
    assert "vCPU-hours" in err


def test_a_bill_that_cannot_be_priced_is_a_warning(aws, capsys, tmp_path):
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"date": "2027", "source": "x", "regions": {"eu-west-1": {}}}))
    aws.s3.put_object(Bucket=RESULTS_BUCKET, Key="runs/nopr/merged_decoded_fovs.nc", Body=b"x")
    aws.s3.put_object(Bucket=RESULTS_BUCKET, Key="runs/nopr/summary.json",
                      Body=json.dumps({"run_id": "nopr", "n_fovs": 1, "n_fovs_merged": 1,
                                       "n_features": 0, "n_spots": 0}))
    assert launch(aws, "--run-id", "nopr", "--prices", str(prices), fovs=fov_names(1)) == 0
    err = capsys.readouterr().err
    assert "warning: no bill for run nopr: price table" in err and "region us-east-1" in err


def test_compute_environment_found_through_the_queue(aws):
    executor = BatchExecutor(read_outputs(tf_outputs=aws.outputs_file))
    assert executor.compute_environment()["instance_types"] == ["optimal"]


def test_estimate_on_batch_submits_only_the_sample_and_prices_the_run(aws, capsys, monkeypatch):
    """The sample is one array of 3 and no merge; each sampled child ran 60, 120 and 180 s
    (AWS's attempts, given to moto's jobs) and wrote its record; the quote follows from them."""
    real_follow = BatchExecutor.follow

    def follow(self, manifest, run, observer=None):
        parent = run.process_jobs[0].job_id
        table = b"n" * 1000
        for i, fov in enumerate(manifest.fovs):
            _attempts(f"{parent}:{i}", 60 * (i + 1))
            # a record that proves its table whole, as process-fov writes it
            record = {"fov": fov, "run_id": manifest.run_id, "index": manifest.run_index(fov),
                      "recipe_sha256": manifest.recipe_sha256, "n_features": 1, "seconds": 50,
                      "peak_memory_bytes": 3_000_000_000, "cpus": 1, "nc_bytes": len(table),
                      "nc_sha256": hashlib.sha256(table).hexdigest()}
            for name, body in ((f"{fov}.json", json.dumps(record)), (f"{fov}.nc", table)):
                aws.s3.put_object(Bucket=RESULTS_BUCKET, Key=f"runs/q/fovs/{name}", Body=body)
        return real_follow(self, manifest, run, observer)

    monkeypatch.setattr(BatchExecutor, "follow", follow)
    aws.fovs[:] = fov_names(10)
    code = cli.main(["estimate", "--executor", "batch", "--tf-outputs", str(aws.outputs_file),
                        "--experiment-url", tb.EXPERIMENT, "--recipe", str(aws.recipe),
                        "--results-url", tb.RESULTS, "--run-id", "q", "--sample", "3", "--json", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    quote = json.loads(out)
    jobs = tb.all_jobs(aws)
    assert [j.get("arrayProperties", {}).get("size") for j in jobs] == [3]  # no merge job
    assert quote["sampled_fovs"] == ["fov_000", "fov_004", "fov_009"]
    assert quote["seconds_per_fov"] == 120.0  # median of 60, 120, 180
    assert quote["fovs_at_once"] == 16  # the environment's 16 vCPUs, 1 vCPU a job
    # 10 FOVs fit in one round: the attempts' 120 s (Python start and import 70 s: the attempts'
    # median minus the records' 50 s) plus Fargate's container start (30 s), which attempts leave out
    assert quote["startup_seconds_per_child"]["python_import"] == 70.0
    assert quote["fovs_per_job"] == 1  # 10 children of 1 keep 16 slots busiest
    assert quote["predicted_wall_seconds"] == 150.0
    # 10 FOVs x 150 s at the job definition's 1 vCPU and 2 GB on Fargate in us-east-1
    assert quote["predicted_cost_usd"] == pytest.approx(10 * 150 / 3600 * (0.04048 + 2 * 0.004445), abs=1e-4)
    assert quote["predicted_remaining_cost_usd"] == pytest.approx(7 / 10 * quote["predicted_cost_usd"], abs=1e-4)
    # 3 GB x 1.25 = 3576 MiB -> 4096, a valid Fargate pair with 1 vCPU
    assert (quote["recommended_vcpus"], quote["recommended_memory_mib"]) == (1, 4096)
    assert quote["merge_fits_memory"] is True and quote["merge_fits_disk"] is True
    monkeypatch.setattr(BatchExecutor, "follow", real_follow)
    assert cli.main(["--executor", "batch", "--tf-outputs", str(aws.outputs_file), "--resume", "q",
                        "--results-url", tb.RESULTS, "--no-wait", "--quiet"]) == 0
    assert "7 of 10 FOVs left to process" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------
# Out of memory: resubmitted with more memory, before the merge
# ------------------------------------------------------------------------------------------

OOM = "OutOfMemoryError: Container killed due to memory usage"


def _out_of_memory(job_id: str) -> None:
    """The child as AWS describes a container killed for memory: FAILED, the task's reason
    and the container's documented reason with exit code 137 (moto never produces them)."""
    job = moto_job(job_id)
    job.status = "FAILED"
    job.job_stopped = True
    job.job_stopped_reason = "Essential container in task exited"
    job.attempts[-1]["container"].update({"exitCode": 137, "reason": OOM})


def _oom_on_first_submission(monkeypatch, aws, oom_children: list[int], every: bool = False):
    real_submit = BatchExecutor.submit
    calls = []

    def submit(self, manifest, manifest_url, observer=None, **kwargs):
        run = real_submit(self, manifest, manifest_url, observer, **kwargs)
        calls.append(kwargs)
        if len(calls) == 1 or every:
            job = run.process_jobs[0]
            for i in oom_children if job.is_array else []:
                _out_of_memory(f"{job.job_id}:{i}")
            if not job.is_array:
                _out_of_memory(job.job_id)
            for job_id in (run.process_jobs[0].job_id, run.merge_job_id):
                moto_job(job_id).status = "FAILED"  # Batch fails the array, then its dependent merge
        return run

    monkeypatch.setattr(BatchExecutor, "submit", submit)
    return calls


def test_out_of_memory_fovs_are_resubmitted_with_twice_the_memory(aws, capsys, monkeypatch):
    _oom_on_first_submission(monkeypatch, aws, [1, 3])
    aws.s3.put_object(Bucket=RESULTS_BUCKET, Key="runs/oom/merged_decoded_fovs.nc", Body=b"x")
    assert launch(aws, "--run-id", "oom", fovs=fov_names(4)) == 0
    err = capsys.readouterr().err
    assert "FOV fov_001 (index 1) failed: Essential container in task exited (" + OOM in err
    assert "2 FOV(s) ran out of memory with 2048 MiB (fov_001, fov_003): resubmitted with 1 vCPU and 4096 MiB" in err
    escalation = tb.read_jobs_file(aws, "oom", "jobs-resume-1.json")
    array = escalation["process_jobs"][0]
    assert array["size"] == 2 and escalation["resources"] == {"vcpus": 1, "memory_mib": 4096}
    first = tb.read_jobs_file(aws, "oom")
    parent = first["process_jobs"][0]["job_id"]
    assert escalation["escalated_from"] == {"fov_001": f"{parent}:1", "fov_003": f"{parent}:3"}
    # What moto received: the new array's containerOverrides carry the new size, and the
    # resume manifest it runs lists just the two FOVs.
    received = moto_job(array["job_id"]).container_overrides
    assert {"type": "MEMORY", "value": "4096"} in received["resourceRequirements"]
    assert {"type": "VCPU", "value": "1"} in received["resourceRequirements"]
    key = "runs/oom/manifest-resume-1.json"
    manifest = json.loads(aws.s3.get_object(Bucket=RESULTS_BUCKET, Key=key)["Body"].read())
    assert manifest["fovs"] == ["fov_001", "fov_003"]
    merge = moto_job(escalation["merge_job_id"])
    assert [d["jobId"] for d in merge.depends_on] == [array["job_id"]]


def test_out_of_memory_doubles_up_to_the_cap_then_stops(aws, capsys, monkeypatch):
    calls = _oom_on_first_submission(monkeypatch, aws, [0], every=True)
    assert launch(aws, "--run-id", "cap", "--max-memory", "8192", fovs=fov_names(2)) == 1
    err = capsys.readouterr().err
    assert [c.get("resources", {}).get("memory_mib") for c in calls] == [None, 4096, 8192]
    assert "ran out of memory with 8192 MiB (fov_000), the --max-memory cap of 8192 MiB: not resubmitted" in err
    assert "out of memory: the container used more than its memory; rerun with a higher --max-memory" in err


def test_a_failure_that_is_not_memory_is_not_resubmitted(aws, capsys, monkeypatch):
    calls = _oom_on_first_submission(monkeypatch, aws, [0])
    real_submit = BatchExecutor.submit

    def submit(self, *a, **kw):
        run = real_submit(self, *a, **kw)
        moto_job(f"{run.process_jobs[0].job_id}:1").status = "FAILED"  # a recipe error beside it
        return run

    monkeypatch.setattr(BatchExecutor, "submit", submit)
    assert launch(aws, "--run-id", "mixed", fovs=fov_names(2)) == 1
    assert "ran out of memory with" not in capsys.readouterr().err and len(calls) == 1


def test_status_of_a_merged_run_adds_its_bill(aws, capsys):
    """A run submitted with --no-wait gets its bill when `status` first finds it merged."""
    assert launch(aws, "--run-id", "later", "--no-wait", fovs=fov_names(2)) == 0
    summary = {"run_id": "later", "n_fovs": 2, "n_fovs_merged": 2, "n_features": 0, "n_spots": 0}
    aws.s3.put_object(Bucket=RESULTS_BUCKET, Key="runs/later/summary.json", Body=json.dumps(summary))
    aws.s3.put_object(Bucket=RESULTS_BUCKET, Key="runs/later/merged_decoded_fovs.nc", Body=b"x")
    capsys.readouterr()
    assert cli.main(["status", "later", "--executor", "batch", "--tf-outputs", str(aws.outputs_file),
                        "--results-url", tb.RESULTS]) == 0
    assert "estimated cost: $" in capsys.readouterr().err
    doc = json.loads(aws.s3.get_object(Bucket=RESULTS_BUCKET, Key="runs/later/summary.json")["Body"].read())
    assert doc["bill"]["attempts"] == 3  # two children and the merge
