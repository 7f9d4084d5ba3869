"""Packed Batch runs (several FOVs per child), against in-process moto: what is submitted, how
a failed child's FOVs and a slice's recorded failures are told, and how the packing is chosen."""

from __future__ import annotations

import json

import pytest

from starfish_batch.core import storage
from starfish_batch.core.fov_failure import FovFailure, failure_url
from starfish_batch.core.manifest import Manifest
from starfish_batch.launcher import cli, packing, runs
from starfish_batch.launcher.executors.batch import BatchExecutor
from starfish_batch.launcher.executors.batch.requests import JobTarget, process_requests
from starfish_batch.launcher.quote import Capacity, FovSample, estimate, quote_lines
from starfish_batch.launcher.tf_outputs import read_outputs
from tests.support.batch import (
    EXPERIMENT,
    RESULTS,
    all_jobs,
    fov_names,
    launch,
    moto_job,
    put_done,
    read_jobs_file,
    set_state,
)


def _packed(aws, n: int, per_job: int, run_id: str = "p1"):
    aws.fovs[:] = fov_names(n)
    manifest, url = runs.new_run(EXPERIMENT, str(aws.recipe), RESULTS, run_id=run_id, fovs_per_job=per_job)
    executor = BatchExecutor(read_outputs(tf_outputs=aws.outputs_file), poll_initial=0, poll_max=0,
                             sleep=lambda s: None)
    return executor, manifest, url


def test_fovs_per_job_submits_one_child_per_slice(aws, capsys):
    assert launch(aws, "--run-id", "packed", "--no-wait", "--fovs-per-job", "3", fovs=fov_names(7)) == 0
    err = capsys.readouterr().err
    assert "7 FOVs in 3 children of 3" in err
    assert "(array of 3 children of up to 3 FOVs, FOV indexes from 0)" in err
    manifest = Manifest.load(f"{RESULTS}/packed/manifest.json")
    assert manifest.fovs_per_job == 3 and manifest.n_jobs == 3
    process = next(j for j in all_jobs(aws) if j["jobName"].endswith("process-fov"))
    assert process["arrayProperties"]["size"] == 3
    saved = read_jobs_file(aws, "packed")
    assert saved["fovs_per_job"] == 3 and saved["process_jobs"][0]["size"] == 3


def test_a_packed_childs_timeout_is_the_fov_timeout_times_its_fovs():
    manifest = Manifest(run_id="t", experiment_url="e", recipe_url="r", recipe_sha256="0" * 64,
                        results_url="/res", fovs=fov_names(25_001), fovs_per_job=2)
    target = JobTarget("q", "jd-pf", "jd-m", submitter="me")
    requests = process_requests(manifest, "/res/t/manifest.json", target, fov_timeout_seconds=3600)
    assert [r["arrayProperties"]["size"] for r in requests[:1]] == [10_000]
    assert [r.get("arrayProperties", {}).get("size", 1) for r in requests] == [10_000, 2_501]
    assert all(r["timeout"] == {"attemptDurationSeconds": 7200} for r in requests)
    offsets = [next(e["value"] for e in r["containerOverrides"]["environment"] if e["name"] == "FOV_INDEX_OFFSET")
               for r in requests]
    assert offsets == ["0", "10000"]  # job indexes, not FOV indexes
    unpacked = process_requests(Manifest(**{**manifest.__dict__, "fovs_per_job": 1}), "u", target,
                                fov_timeout_seconds=3600)
    assert all("timeout" not in r for r in unpacked)  # one FOV per child: the job definition's own


def test_a_failed_child_fails_the_fovs_of_its_slice_left_undone(aws, capsys, monkeypatch):
    monkeypatch.setenv("MOTO_SIMPLE_BATCH_FAIL_AFTER", "0")
    executor, manifest, url = _packed(aws, 5, 2)
    put_done(aws, "p1", "fov_000")  # the first child committed its first FOV before it died
    run = executor.submit(manifest, url)
    outcome = executor.follow(manifest, run)
    assert outcome.state == "fovs_failed"
    assert [(f.fov, f.index) for f in outcome.failures] == [
        ("fov_001", 1), ("fov_002", 2), ("fov_003", 3), ("fov_004", 4)]
    assert len({f.job_id for f in outcome.failures}) == 3  # three children


def test_fovs_a_slice_recorded_failed_are_told_and_the_merge_is_cancelled(aws, capsys):
    executor, manifest, url = _packed(aws, 4, 2)
    run = executor.submit(manifest, url)  # moto's children all succeed at once
    set_state(run.merge_job_id, "RUNNABLE")  # the merge waits, as on AWS
    for fov in manifest.fovs:
        if fov != "fov_003":
            put_done(aws, "p1", fov)
    failure = FovFailure(fov="fov_003", index=3, reason="FOV fov_003: recipe raised ValueError: bad tile",
                         run_id="p1", recipe_sha256=manifest.recipe_sha256, job_id=f"{run.process_jobs[0].job_id}:1")
    storage.write_text(failure_url(manifest, "fov_003"), failure.to_json())
    outcome = executor.follow(manifest, run)
    assert outcome.state == "fovs_failed"
    assert [(f.fov, f.reason, f.is_recipe_error) for f in outcome.failures] == [
        ("fov_003", "FOV fov_003: recipe raised ValueError: bad tile", True)]
    merge = executor.describe([run.merge_job_id])[run.merge_job_id]
    # cancelled: it would only fail on the missing FOV (moto marks it stopped, AWS then fails it)
    assert moto_job(run.merge_job_id).stop and merge["statusReason"] == "starfish-batch: FOVs failed; nothing to merge"
    # a failure record of a FOV done since (a retry) is stale: not a failure
    put_done(aws, "p1", "fov_003")
    assert executor.slice_failures(manifest, set()) == []


def test_choose_packs_children_of_about_the_target():
    # 35 s a FOV, 20 s start-up, 5 min children: 8 FOVs a child
    assert packing.choose(9_600, 35.0, 20.0, slots=256) == 8
    assert packing.launch_line(9_600, 8, 20 + 8 * 35) == "9,600 FOVs in 1,200 children of 8 (about 5 min each)"
    assert packing.choose(9_600, 35.0, 20.0, slots=256, child_minutes=10) == 16
    # never fewer children than the environment runs at once
    assert packing.choose(100, 10.0, 5.0, slots=50) == 2
    assert packing.choose(100, 10.0, 5.0, slots=500) == 1
    # enough FOVs a child that the children fit one array of 10,000
    assert packing.choose(50_000, 600.0, 0.0, slots=1) == 5
    assert packing.choose(1, 1.0, 0.0, slots=1) == 1


def test_the_quote_counts_the_startup_once_per_child():
    samples = [FovSample(fov=f"f{i}", seconds=40.0, peak_memory_bytes=10**9, cpus=1, output_bytes=10**6,
                         work_seconds=35.0) for i in range(3)]
    capacity = Capacity(executor="batch", slots=256, job_vcpus=1, job_memory_mib=4096,
                        compute_type="FARGATE", image_bytes=500 * 10**6)
    quote = estimate(9_600, 9_600, samples, capacity, hourly=lambda v, m: 3.6)  # $0.001 a second
    start = quote["startup_seconds_per_child"]
    assert start["python_import"] == 5.0 and start["image_pull"] == 10.0 and start["container_start"] == 30.0
    assert start["seconds"] == 45.0
    per = quote["fovs_per_job"]
    assert per == 7 and quote["children"] == 1_372  # (300 - 45) // 35
    assert quote["predicted_cost_usd"] == pytest.approx(0.001 * (1_372 * 45 + 9_600 * 35))
    assert quote["unpacked_cost_usd"] == pytest.approx(0.001 * 9_600 * (45 + 35))

    text = "\n".join(quote_lines(quote))
    assert "start-up per child: 45.0 s = container start 30 s + image pull 10 s (500.0 MB at 50.0 MB/s)" in text
    assert "9,600 FOVs in 1,372 children of 7 (about 5 min each)" in text


def test_resume_packs_from_the_runs_quote(aws, capsys):
    aws.fovs[:] = fov_names(40)
    manifest, _ = runs.new_run(EXPERIMENT, str(aws.recipe), RESULTS, run_id="q1")
    quote = {"seconds_per_fov_work": 30.0, "fovs_at_once": 4,
             "startup_seconds_per_child": {"seconds": 30.0}}
    storage.write_text(f"{RESULTS}/q1/quote.json", json.dumps(quote))
    assert cli.main(["--executor", "batch", "--tf-outputs", str(aws.outputs_file), "--results-url", RESULTS,
                     "--resume", "q1", "--no-wait", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "40 FOVs in 5 children of 9 (about 5 min each)" in err  # min(9 by time, 10 by slots)
    resumed = Manifest.load(f"{RESULTS}/q1/manifest-resume-1.json")
    assert resumed.fovs_per_job == 9


def test_fovs_per_job_is_refused_locally(tmp_path, capsys):
    code = cli.main(["--experiment-url", str(tmp_path / "e.json"), "--recipe", str(tmp_path / "r.py"),
                     "--results-url", str(tmp_path), "--fovs-per-job", "4", "--quiet"])
    assert code == 1
    assert "--fovs-per-job 4 applies to --executor batch" in capsys.readouterr().err



def test_fail_fast_counts_the_fovs_of_packed_children(aws):
    executor, manifest, url = _packed(aws, 8, 2)
    run = executor.submit(manifest, url)
    parent = run.process_jobs[0].job_id
    for i in (2, 3):
        set_state(f"{parent}:{i}", "RUNNING")  # still going: the first two children ended
    set_state(parent, "RUNNING")
    set_state(run.merge_job_id, "PENDING")
    for index in range(4):  # both children went through their slices, every FOV failing alike
        fov = manifest.fovs[index]
        failure = FovFailure(fov=fov, index=index, reason=f"FOV {fov}: recipe raised KeyError: 'z'",
                             run_id="p1", recipe_sha256=manifest.recipe_sha256)
        storage.write_text(failure_url(manifest, fov), failure.to_json())
    outcome = executor.follow(manifest, run, max_failures=3)
    assert outcome.state == "stopped_early" and outcome.stopped_early == "recipe raised KeyError: 'z'"
    assert run.merge_job_id in outcome.cancelled
