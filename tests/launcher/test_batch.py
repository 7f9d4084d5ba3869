"""The AWS Batch executor against in-process moto (Batch without Docker, S3, CloudWatch Logs).

moto with ``use_docker: False`` finishes every job inside ``submit_job`` (SUCCEEDED, or FAILED
with ``MOTO_SIMPLE_BATCH_FAIL_AFTER``); where a test needs jobs that are still queued or running,
it sets the state of moto's own job objects, then reads everything back through the API.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time

import boto3
import pytest

from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.core.manifest import Manifest
from starfish_batch.launcher import cli, runs
from starfish_batch.launcher.executors.batch import BatchExecutor, chunks, job_name, jobs_url_for
from starfish_batch.launcher.executors.batch import jobs as batch_jobs
from starfish_batch.launcher.executors.batch.watch import counts
from starfish_batch.launcher.tf_outputs import REQUIRED, find_module_dir, parse_outputs, read_outputs
from tests.support.batch import (
    EXPERIMENT,
    LOG_GROUP,
    REGION,
    RESULTS,
    RESULTS_BUCKET,
    all_jobs,
    env_of,
    fov_names,
    launch,
    moto_job,
    put_done,
    read_jobs_file,
    results_keys,
    set_state,
    submitted,
    tf_json,
)

# ------------------------------------------------------------------------------------------
# Terraform outputs
# ------------------------------------------------------------------------------------------

def test_outputs_plain_and_terraform_shapes(aws):
    from_tf = read_outputs(tf_outputs=aws.outputs_file)
    assert from_tf.job_queue_arn == aws.queue
    assert from_tf.extra["job_queue_name"] == "sfb-queue"
    plain = parse_outputs(aws.values, "plain")
    assert plain.describe() == from_tf.describe()


def test_outputs_missing_keys_named():
    with pytest.raises(StarfishBatchError) as info:
        parse_outputs(tf_json({"region": "us-east-1", "vpc_id": "vpc-1"}), "other.json")
    message = str(info.value)
    assert "lack job_queue_arn, process_fov_job_definition_arn" in message
    assert "submitter_policy_arn" in message and "terraform apply" in message


def test_outputs_empty_means_not_applied():
    with pytest.raises(StarfishBatchError, match=r"no Terraform outputs .*terraform apply"):
        parse_outputs({}, "x")


def test_outputs_unreadable_file(tmp_path):
    with pytest.raises(StarfishBatchError, match="cannot read --tf-outputs"):
        read_outputs(tf_outputs=tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("Outputs:\nregion = us-east-1\n")
    with pytest.raises(StarfishBatchError, match=r"not JSON .*terraform output -json > FILE"):
        read_outputs(tf_outputs=bad)


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
def test_outputs_of_a_directory_without_state(tmp_path):
    """`terraform output -json` in a directory that was never applied prints `{}`."""
    proc = subprocess.run(["terraform", f"-chdir={tmp_path}", "output", "-json"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and json.loads(proc.stdout) == {}
    with pytest.raises(StarfishBatchError, match=r"no Terraform outputs in `terraform output"):
        read_outputs(tf_dir=tmp_path)


def test_helpers():
    assert chunks(1) == [(0, 1)]
    assert chunks(15) == [(0, 15)]
    assert chunks(10_000) == [(0, 10_000)]
    assert chunks(25_001) == [(0, 10_000), (10_000, 10_000), (20_000, 5_001)]
    assert chunks(0) == []
    name = job_name("a" * 64, "resume12-process-fov-part3")
    assert len(name) <= 128 and batch_jobs.JOB_NAME_RE.match(name)
    assert jobs_url_for("s3://b/r/x/manifest.json") == "s3://b/r/x/jobs.json"
    assert jobs_url_for("s3://b/r/x/manifest-resume-3.json") == "s3://b/r/x/jobs-resume-3.json"


# ------------------------------------------------------------------------------------------
# Submission: the exact requests moto stored
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 15])
def test_submit_requests(aws, capsys, n):
    fovs = fov_names(n)
    assert launch(aws, "--run-id", f"run-{n}", "--no-wait", fovs=fovs) == 0
    out = capsys.readouterr().out.split()
    manifest_url = f"{RESULTS}/run-{n}/manifest.json"

    caller_userid = boto3.client("sts", region_name=REGION).get_caller_identity()["UserId"]
    jobs = {j["jobName"]: j for j in all_jobs(aws)}
    assert set(jobs) == {f"starfish-run-{n}-process-fov", f"starfish-run-{n}-merge"}
    process = jobs[f"starfish-run-{n}-process-fov"]
    merge = jobs[f"starfish-run-{n}-merge"]
    if n == 1:
        assert "arrayProperties" not in process  # a plain job: arrays have 2 to 10,000 children
    else:
        assert process["arrayProperties"]["size"] == n
        children = aws.batch.list_jobs(arrayJobId=process["jobId"])["jobSummaryList"]
        assert len(children) == n
    assert process["jobDefinition"] == aws.jds["process-fov"]
    assert merge["jobDefinition"] == aws.jds["merge-batch-job"]
    assert process["jobQueue"] == merge["jobQueue"] == aws.queue
    assert merge["dependsOn"] == [{"jobId": process["jobId"]}]
    assert process["dependsOn"] == []
    manifest_bytes = aws.s3.get_object(Bucket="sfb-results", Key=manifest_url.split("/", 3)[3])["Body"].read()
    for job in (process, merge):
        env = env_of(job)
        assert env["RUN_MANIFEST_URL"] == manifest_url
        # the manifest's digest is in the submitted job itself: nobody can swap the manifest later
        assert env["RUN_MANIFEST_SHA256"] == hashlib.sha256(manifest_bytes).hexdigest()
        assert env["FOV_INDEX_OFFSET"] == "0"
        assert "AWS_BATCH_JOB_ARRAY_INDEX" not in env
        assert job["tags"][batch_jobs.RUN_ID_TAG] == f"run-{n}"
        # the submitter's own aws:userid: what the submitter policy requires on SubmitJob and
        # matches on CancelJob/TerminateJob (moto answers GetCallerIdentity like AWS)
        assert job["tags"][batch_jobs.SUBMITTER_TAG] == caller_userid
    # stdout: the run id and the job ids; the ids are also saved in the run folder
    assert out == ["run_id", f"run-{n}", "process-fov", process["jobId"],
                   "merge-batch-job", merge["jobId"]]
    saved = read_jobs_file(aws, f"run-{n}")
    assert saved["process_jobs"] == [{"job_id": process["jobId"], "job_name": process["jobName"],
                                      "offset": 0, "size": n}]
    assert saved["merge_job_id"] == merge["jobId"]
    manifest = Manifest.load(manifest_url)
    assert manifest.fovs == fovs


def test_submit_more_than_10000_fovs(aws):
    """10,001 FOVs: an array of 10,000 and a plain job with FOV_INDEX_OFFSET=10000."""
    fovs = [f"f{i}" for i in range(10_001)]
    manifest = Manifest(run_id="big", experiment_url=EXPERIMENT,
                        recipe_url=f"{RESULTS}/big/recipe.py", recipe_sha256="0" * 64,
                        results_url=RESULTS, fovs=fovs)
    manifest_url = manifest.save()
    executor = BatchExecutor(read_outputs(tf_outputs=aws.outputs_file))
    run = executor.submit(manifest, manifest_url)

    assert [(j.offset, j.size) for j in run.process_jobs] == [(0, 10_000), (10_000, 1)]
    described = executor.describe(run.job_ids)
    first, second = (described[j.job_id] for j in run.process_jobs)
    merge = described[run.merge_job_id]
    assert first["arrayProperties"]["size"] == 10_000
    assert "arrayProperties" not in second
    assert env_of(first)["FOV_INDEX_OFFSET"] == "0"
    assert env_of(second)["FOV_INDEX_OFFSET"] == "10000"
    assert first["jobName"].endswith("process-fov-part1")
    assert second["jobName"].endswith("process-fov-part2")
    assert merge["dependsOn"] == [{"jobId": first["jobId"]}, {"jobId": second["jobId"]}]
    assert env_of(merge)["RUN_MANIFEST_URL"] == manifest_url
    assert counts(run, described)["SUCCEEDED"] == 10_001


def test_job_queue_override_by_name(aws, capsys):
    assert launch(aws, "--run-id", "named", "--no-wait", "--job-queue", "sfb-queue",
                  fovs=fov_names(2)) == 0
    assert {j["jobQueue"] for j in all_jobs(aws)} == {aws.queue}
    assert read_jobs_file(aws, "named")["job_queue"] == "sfb-queue"


def test_results_default_to_the_module_bucket(aws, capsys):
    aws.fovs[:] = fov_names(2)
    code = cli.main(["--executor", "batch", "--tf-outputs", str(aws.outputs_file),
                     "--experiment-url", EXPERIMENT, "--recipe", str(aws.recipe),
                     "--run-id", "dflt", "--no-wait", "--quiet"])
    assert code == 0
    assert "dflt/jobs.json" in results_keys(aws)


# ------------------------------------------------------------------------------------------
# Following
# ------------------------------------------------------------------------------------------

def _finish(aws, executor, manifest, run, capsys) -> tuple[int, str]:
    """Follow ``run`` to its end and say it as the launcher does: (exit code, all it printed)."""
    args = cli.parse_args(["--executor", "batch", "--tf-outputs", str(aws.outputs_file), "--results-url", RESULTS])
    code = cli.finish_batch(executor.follow(manifest, run), manifest, run, args, RESULTS)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_follow_until_merged_with_backoff(aws, capsys):
    executor, manifest, run = submitted(aws, 4)
    parent = run.process_jobs[0].job_id
    # Hold the jobs back: two children running, two queued, the merge waiting.
    for i in range(4):
        set_state(f"{parent}:{i}", "RUNNING" if i < 2 else "RUNNABLE")
    set_state(parent, "PENDING")
    set_state(run.merge_job_id, "PENDING")
    sleeps: list[float] = []
    seen: list[dict] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        seen.append(counts(run, executor.describe(run.job_ids)))
        step = len(sleeps)
        if step == 2:
            for i in range(4):
                set_state(f"{parent}:{i}", "SUCCEEDED" if i < 2 else "RUNNING")
        if step == 4:
            for i in range(4):
                set_state(f"{parent}:{i}", "SUCCEEDED")
            set_state(run.merge_job_id, "RUNNING")
        if step == 5:
            aws.s3.put_object(Bucket=RESULTS_BUCKET, Key="runs/r1/merged_decoded_fovs.nc",
                              Body=b"x")
            set_state(run.merge_job_id, "SUCCEEDED")

    executor.sleep = sleep
    code, text = _finish(aws, executor, manifest, run, capsys)
    assert code == 0
    assert sleeps == [2.0, 3.0, 4.5, 6.75, 10.125]
    assert seen[0]["RUNNING"] == 2 and seen[0]["RUNNABLE"] == 2
    assert seen[2]["SUCCEEDED"] == 2 and seen[2]["RUNNING"] == 2
    assert text.strip().splitlines()[-2:] == [f"merged: {RESULTS}/r1/merged_decoded_fovs.nc",
                                             f"report: {RESULTS}/r1/report.html"]


def test_backoff_is_capped(aws):
    executor, manifest, run = submitted(aws, 2)
    set_state(run.merge_job_id, "PENDING")
    for i in range(2):
        set_state(f"{run.process_jobs[0].job_id}:{i}", "RUNNING")
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 12:
            raise KeyboardInterrupt

    executor.sleep = sleep
    assert executor.follow(manifest, run).state == "interrupted"
    assert max(sleeps) == 30.0 and sleeps[-1] == 30.0


def test_describe_batches_100_ids(aws):
    executor, manifest, run = submitted(aws, 150)
    calls = []
    real = executor.batch.describe_jobs

    def describe_jobs(jobs):
        calls.append(len(jobs))
        return real(jobs=jobs)

    executor.batch.describe_jobs = describe_jobs
    children = [f"{run.process_jobs[0].job_id}:{i}" for i in range(150)]
    assert len(executor.describe(children)) == 150
    assert calls == [100, 50]


def test_follow_merged_file_missing_is_an_error(aws, capsys):
    assert launch(aws, "--run-id", "nomerge", fovs=fov_names(2)) == 1
    assert "the merge job succeeded but s3://sfb-results/runs/nomerge/merged_decoded_fovs.nc" \
        in capsys.readouterr().err


def test_failures_named_by_fov(aws, capsys, monkeypatch):
    monkeypatch.setenv("MOTO_SIMPLE_BATCH_FAIL_AFTER", "0")
    assert launch(aws, "--run-id", "bad", fovs=fov_names(3)) == 1
    err = capsys.readouterr().err
    # the same cause is told once, naming the other FOVs, not three times over
    assert err.count("failed: ") == 1 and "FOV fov_000 (index 0) failed" in err
    assert "2 other FOV(s) failed the same way: fov_001, fov_002" in err
    assert "3 of 3 FOVs failed (fov_000, fov_001, fov_002)" in err
    assert "does not run" in err
    assert "--executor batch --resume bad --results-url s3://sfb-results/runs" in err
    # report.html, beside the run in S3: the failures and the same resume command
    assert "report: s3://sfb-results/runs/bad/report.html" in err
    page = aws.s3.get_object(Bucket=RESULTS_BUCKET, Key="runs/bad/report.html")["Body"].read().decode()
    assert 'class="state failed"' in page and page.count('<rect class="m failed"') == 3
    assert "--executor batch --resume bad --results-url s3://sfb-results/runs" in page


def test_failure_shows_reason_exit_code_and_log_tail(aws, monkeypatch, capsys):
    monkeypatch.setenv("MOTO_SIMPLE_BATCH_FAIL_AFTER", "0")
    executor, manifest, run = submitted(aws, 3, run_id="tail")
    parent = run.process_jobs[0].job_id
    child = aws.batch.describe_jobs(jobs=[f"{parent}:1"])["jobs"][0]
    stream = child["attempts"][-1]["container"]["logStreamName"]
    aws.logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
    now = int(time.time() * 1000)  # CloudWatch (and moto) drop events older than 14 days
    aws.logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=stream, logEvents=[
        {"timestamp": now + i, "message": f"line {i}"} for i in range(30)
    ] + [{"timestamp": now + 100,
          "message": "process-fov: error: FOV fov_001: ValueError: bad tile"}])
    job = moto_job(f"{parent}:1")
    job.job_stopped_reason = "Essential container in task exited"
    job.attempts[-1]["container"]["exitCode"] = 1  # moto never reports one; AWS does, here
    outcome = executor.follow(manifest, run)
    assert outcome.state == "fovs_failed" and [f.fov for f in outcome.failures] == ["fov_000", "fov_001", "fov_002"]
    cli.print_failures(outcome.failures)
    text = capsys.readouterr().err
    assert ("FOV fov_001 (index 1) failed: Essential container in task exited; exit code 1; "
            f"job {parent}:1") in text
    assert f"last lines of log {LOG_GROUP} {stream}:" in text
    assert "| process-fov: error: FOV fov_001: ValueError: bad tile" in text
    assert "| line 29" in text and "| line 10" not in text  # the last 20 lines only
    assert "FOV fov_000 (index 0) failed: no reason given" in text
    assert "cannot read log" in text  # fov_000's stream was never written


def test_ctrl_c_leaves_jobs_running(aws, capsys):
    executor, manifest, run = submitted(aws, 2, run_id="intr")
    set_state(run.merge_job_id, "PENDING")

    def sleep(_seconds: float) -> None:
        raise KeyboardInterrupt

    executor.sleep = sleep
    code, text = _finish(aws, executor, manifest, run, capsys)
    assert code == 130
    # the commands it suggests are complete: they find the same outputs and results again
    hint = f"intr --results-url {RESULTS} --tf-outputs {aws.outputs_file} --executor batch"
    assert f"starfish_workflow.py status {hint}" in text
    assert f"starfish_workflow.py cancel {hint}" in text
    assert cli.main(["status", *hint.split()]) == 1  # as printed: not merged yet
    assert json.loads(capsys.readouterr().out)["run_id"] == "intr"
    assert not moto_job(run.merge_job_id).stop
    assert aws.batch.describe_jobs(jobs=[run.merge_job_id])["jobs"][0]["status"] == "PENDING"


# ------------------------------------------------------------------------------------------
# Resume, status, cancel
# ------------------------------------------------------------------------------------------

def test_resume_submits_only_missing_fovs(aws, capsys):
    fovs = fov_names(15)
    assert launch(aws, "--run-id", "res", "--no-wait", fovs=fovs) == 0
    done = fovs[:4] + fovs[7:15]  # fov_004, fov_005, fov_006 have no output
    for fov in done:
        put_done(aws, "res", fov)
    aws.s3.put_object(Bucket=RESULTS_BUCKET, Key="runs/res/fovs/fov_004.nc", Body=b"x")  # no record
    put_done(aws, "res", "fov_005")  # a record, but its table was cut short:
    aws.s3.put_object(Bucket=RESULTS_BUCKET, Key="runs/res/fovs/fov_005.nc", Body=b"")
    first = read_jobs_file(aws, "res")
    capsys.readouterr()

    code = cli.main(["--executor", "batch", "--tf-outputs", str(aws.outputs_file),
                     "--resume", "res", "--results-url", RESULTS, "--no-wait", "--quiet"])
    assert code == 0
    resume_url = f"{RESULTS}/res/manifest-resume-1.json"
    assert Manifest.load(resume_url).fovs == ["fov_004", "fov_005", "fov_006"]
    assert read_jobs_file(aws, "res") == first  # never overwritten
    second = read_jobs_file(aws, "res", "jobs-resume-1.json")
    jobs = {j["jobId"]: j for j in all_jobs(aws)}
    process = jobs[second["process_jobs"][0]["job_id"]]
    merge = jobs[second["merge_job_id"]]
    assert process["arrayProperties"]["size"] == 3
    assert process["jobName"] == "starfish-res-resume1-process-fov"
    assert env_of(process)["RUN_MANIFEST_URL"] == resume_url
    assert env_of(merge)["RUN_MANIFEST_URL"] == resume_url
    assert merge["dependsOn"] == [{"jobId": process["jobId"]}]
    assert len(jobs) == 4


def test_resume_with_nothing_left_only_merges(aws, capsys):
    fovs = fov_names(2)
    assert launch(aws, "--run-id", "full", "--no-wait", fovs=fovs) == 0
    for fov in fovs:
        put_done(aws, "full", fov)
    code = cli.main(["--executor", "batch", "--tf-outputs", str(aws.outputs_file),
                     "--resume", "full", "--results-url", RESULTS, "--no-wait", "--quiet"])
    assert code == 0
    saved = read_jobs_file(aws, "full", "jobs-resume-1.json")
    assert saved["process_jobs"] == []
    merge = aws.batch.describe_jobs(jobs=[saved["merge_job_id"]])["jobs"][0]
    assert merge["dependsOn"] == []


def test_status(aws, capsys, monkeypatch):
    monkeypatch.setenv("MOTO_SIMPLE_BATCH_FAIL_AFTER", "0")
    assert launch(aws, "--run-id", "st", "--no-wait", fovs=fov_names(3)) == 0
    capsys.readouterr()
    put_done(aws, "st", "fov_002")
    base = ["--executor", "batch", "--tf-outputs", str(aws.outputs_file), "--results-url", RESULTS]
    assert cli.main(["status", "st", *base]) == 1
    captured = capsys.readouterr()
    state = json.loads(captured.out)
    assert state["fovs_done"] == 1 and state["fovs_left"] == ["fov_000", "fov_001"]
    assert state["latest_counts"]["FAILED"] == 3
    assert state["failed_fovs"] == ["fov_000", "fov_001", "fov_002"]
    assert [j["job"] for j in state["jobs"]] == ["process-fov", "merge-batch-job"]
    assert "FOV fov_000 (index 0) failed" in captured.err and "fov_001, fov_002" in captured.err
    page = aws.s3.get_object(Bucket=RESULTS_BUCKET, Key="runs/st/report.html")["Body"].read().decode()
    assert page.count('<rect class="m failed"') == 2  # fov_002 has an output: not failed
    assert '<rect class="m empty' in page and "by status" in page  # its record says 0 features
    aws.s3.put_object(Bucket=RESULTS_BUCKET, Key="runs/st/merged_decoded_fovs.nc", Body=b"x")
    assert cli.main(["status", "st", *base]) == 0
    assert json.loads(capsys.readouterr().out)["merged"] is True


def test_status_of_a_run_neversubmitted(aws, capsys):
    aws.fovs[:] = fov_names(2)
    runs.new_run(EXPERIMENT, str(aws.recipe), RESULTS, run_id="local")
    assert cli.main(["status", "local", "--executor", "batch", "--tf-outputs",
                     str(aws.outputs_file), "--results-url", RESULTS]) == 1
    assert "has no jobs file" in capsys.readouterr().err


def test_cancel(aws, capsys):
    assert launch(aws, "--run-id", "can", "--no-wait", fovs=fov_names(3)) == 0
    saved = read_jobs_file(aws, "can")
    parent, merge = saved["process_jobs"][0]["job_id"], saved["merge_job_id"]
    set_state(parent, "PENDING")
    set_state(f"{parent}:0", "RUNNING")
    set_state(f"{parent}:1", "RUNNABLE")
    set_state(merge, "PENDING")
    capsys.readouterr()
    # `cancel` needs no --executor: only Batch runs can be cancelled
    assert cli.main(["cancel", "can", "--tf-outputs", str(aws.outputs_file),
                     "--results-url", RESULTS]) == 0
    out = capsys.readouterr().out.split("\n")
    assert f"terminated {parent}" in out and f"cancelled {merge}" in out
    described = {j["jobId"]: j for j in aws.batch.describe_jobs(jobs=[parent, merge])["jobs"]}
    assert moto_job(parent).stop and moto_job(merge).stop
    assert described[merge]["statusReason"] == "cancelled with `starfish_workflow.py cancel can`"
    # Everything finished: nothing to do, and no error.
    for job in (parent, f"{parent}:0", f"{parent}:1", merge):
        set_state(job, "FAILED")
    assert cli.main(["cancel", "can", "--tf-outputs", str(aws.outputs_file),
                     "--results-url", RESULTS]) == 0
    assert "nothing to cancel" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------
# Bad input: a clear error, nothing submitted, nothing written
# ------------------------------------------------------------------------------------------

def _nothing_done(aws) -> None:
    assert aws.batch.list_jobs(jobQueue=aws.queue)["jobSummaryList"] == []
    assert results_keys(aws) == []


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
def test_bad_no_terraform_state(aws, capsys):
    empty = aws.tmp_path / "tf"
    empty.mkdir()
    aws.fovs[:] = fov_names(2)
    code = cli.main(["--executor", "batch", "--tf-dir", str(empty), "--experiment-url",
                     EXPERIMENT, "--recipe", str(aws.recipe), "--results-url", RESULTS])
    assert code == 1
    err = capsys.readouterr().err
    assert f"no Terraform outputs in `terraform output -json` in {empty}" in err
    assert "terraform apply" in err
    _nothing_done(aws)


def test_bad_outputs_of_another_module(aws, capsys):
    other = aws.tmp_path / "other.json"
    other.write_text(json.dumps(tf_json({"region": REGION, "vpc_id": "vpc-123"})))
    code = cli.main(["--executor", "batch", "--tf-outputs", str(other), "--experiment-url",
                     EXPERIMENT, "--recipe", str(aws.recipe), "--results-url", RESULTS])
    assert code == 1
    err = capsys.readouterr().err
    missing = ", ".join(k for k in REQUIRED if k != "region")
    assert f"lack {missing}" in err
    _nothing_done(aws)


def test_bad_queue(aws, capsys):
    assert launch(aws, "--job-queue", "no-such-queue", fovs=fov_names(2)) == 1
    err = capsys.readouterr().err
    assert "job queue no-such-queue (from --job-queue) does not exist in region us-east-1" in err
    _nothing_done(aws)


def test_bad_disabled_queue(aws, capsys):
    aws.batch.update_job_queue(jobQueue=aws.queue, state="DISABLED")
    assert launch(aws, fovs=fov_names(2)) == 1
    assert "is DISABLED/VALID" in capsys.readouterr().err
    _nothing_done(aws)


def test_bad_job_definition(aws, capsys):
    aws.batch.deregister_job_definition(jobDefinition=aws.jds["merge-batch-job"])
    assert launch(aws, fovs=fov_names(2)) == 1
    err = capsys.readouterr().err
    assert f"job definition {aws.jds['merge-batch-job']} (merge_job_definition_arn" in err
    _nothing_done(aws)


def test_bad_region(aws, capsys):
    other = aws.tmp_path / "west.json"
    other.write_text(json.dumps(tf_json({**aws.values, "region": "us-west-2"})))
    aws.fovs[:] = fov_names(2)
    code = cli.main(["--executor", "batch", "--tf-outputs", str(other), "--experiment-url",
                     EXPERIMENT, "--recipe", str(aws.recipe), "--results-url", RESULTS])
    assert code == 1
    assert "is in region us-east-1, but the Terraform outputs" in capsys.readouterr().err
    _nothing_done(aws)


def test_bad_unreachable_experiment(aws, capsys):
    aws.fovs[:] = []  # the real listing: starfish opens the URL
    assert launch(aws) == 1
    assert f"cannot open experiment {EXPERIMENT}" in capsys.readouterr().err
    _nothing_done(aws)


def test_bad_recipe_syntax(aws, capsys):
    aws.recipe.write_text("def process_fov(fov, codebook)\n    return fov\n")
    assert launch(aws, fovs=fov_names(2)) == 1
    assert "has a syntax error at line 1" in capsys.readouterr().err
    _nothing_done(aws)


def test_bad_local_results(aws, capsys):
    local = aws.tmp_path / "results"
    aws.fovs[:] = fov_names(2)
    code = cli.main(["--executor", "batch", "--tf-outputs", str(aws.outputs_file),
                     "--experiment-url", EXPERIMENT, "--recipe", str(aws.recipe),
                     "--results-url", str(local)])
    assert code == 1
    assert f"--results-url {local} is a local path" in capsys.readouterr().err
    assert not local.exists()
    _nothing_done(aws)


def test_bad_local_experiment(aws, capsys, monkeypatch):
    local = aws.tmp_path / "exp" / "experiment.json"
    monkeypatch.setattr(runs, "plan_inputs", lambda url, expected=None: (["a", "b"], {}))
    monkeypatch.setattr(runs, "image_types", lambda url, expected=None: ["primary"])
    code = cli.main(["--executor", "batch", "--tf-outputs", str(aws.outputs_file),
                     "--experiment-url", str(local), "--recipe", str(aws.recipe),
                     "--results-url", RESULTS])
    assert code == 1
    assert f"--experiment-url {local} is a local path" in capsys.readouterr().err
    _nothing_done(aws)


def test_allow_partial_is_refused_on_batch(aws, capsys):
    assert launch(aws, "--allow-partial", fovs=fov_names(2)) == 1
    assert "--allow-partial applies to the local executor" in capsys.readouterr().err
    _nothing_done(aws)


def test_module_dir_found_above_a_start(tmp_path):
    (tmp_path / "main.tf").write_text("")
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert find_module_dir(tmp_path / "a" / "b") == tmp_path
    assert find_module_dir() is not None  # this repository's module


def test_tf_dir_that_does_not_exist(tmp_path):
    with pytest.raises(StarfishBatchError, match=r"--tf-dir .*nope is not a directory"):
        read_outputs(tf_dir=tmp_path / "nope")
