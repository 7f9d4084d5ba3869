"""--fov-timeout on AWS Batch (issue 30, item 4), against moto's Batch like the other Batch
tests: each process-fov job carries it as its attempt timeout (attemptDurationSeconds, at
least 60 as AWS requires), the merge does not, and a child that AWS ended at its timeout
fails its FOV as "timed out after N s", through the printer both executors share."""

from __future__ import annotations

from starfish_batch.launcher import cli
from starfish_batch.launcher.console import print_failures
from starfish_batch.launcher.executors.batch import BatchExecutor
from starfish_batch.launcher.outcome import FollowOutcome
from starfish_batch.launcher.runs import new_run
from starfish_batch.launcher.tf_outputs import read_outputs
from tests.support import batch as tb

# AWS Batch's statusReason for an attempt it ended at its timeout (moto words it otherwise).
AWS_TIMEOUT_REASON = "Job attempt duration exceeded timeout"


def test_fov_timeout_is_each_process_fov_jobs_attempt_timeout(aws):
    assert tb.launch(aws, "--fov-timeout", "120", "--no-wait", fovs=tb.fov_names(3)) == 0
    jobs = {job["jobName"]: job for job in tb.all_jobs(aws)}
    process = [j for name, j in jobs.items() if "process-fov" in name]
    merge = [j for name, j in jobs.items() if "merge" in name]
    assert process and merge
    assert all(j.get("timeout") == {"attemptDurationSeconds": 120} for j in process)
    assert all(not j.get("timeout") for j in merge)  # the FOV timeout is not the merge's


def test_a_fov_timeout_under_60_seconds_is_refused_on_batch(aws, capsys):
    assert tb.launch(aws, "--fov-timeout", "30", fovs=tb.fov_names(2)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["starfish_workflow.py: error: --fov-timeout 30: AWS Batch's attempt timeout is at least "
                   "60 seconds; give 60 or more"]
    assert tb.all_jobs(aws) == []  # nothing submitted


def test_a_child_ended_at_its_timeout_fails_as_timed_out(aws, capsys):
    aws.fovs[:] = tb.fov_names(2)
    manifest, url = new_run(tb.EXPERIMENT, str(aws.recipe), tb.RESULTS, run_id="slow")
    executor = BatchExecutor(read_outputs(tf_outputs=aws.outputs_file), fov_timeout=90)
    run = executor.submit(manifest, url)
    parent = run.process_jobs[0].job_id
    child = tb.moto_job(f"{parent}:1")
    child.status, child.job_stopped, child.job_stopped_reason = "FAILED", True, AWS_TIMEOUT_REASON
    tb.set_state(parent, "FAILED")
    failures = executor.failures(manifest, run, executor.describe(run.job_ids))
    assert [(f.fov, f.index) for f in failures] == [("fov_001", 1)]
    assert failures[0].reason == (f"timed out after 90 s (the job's attempt timeout, --fov-timeout or the job "
                                  f"definition's timeout_seconds: {AWS_TIMEOUT_REASON})")
    args = cli.parse_args(["--executor", "batch", "--tf-outputs", str(aws.outputs_file), "--results-url", tb.RESULTS])
    assert cli.finish_batch(FollowOutcome("fovs_failed", failures), manifest, run, args, tb.RESULTS) == 1
    print_failures(failures)  # the one printer, as the launcher prints a Batch failure while following
    assert "FOV fov_001 (index 1) failed: timed out after 90 s" in capsys.readouterr().err
