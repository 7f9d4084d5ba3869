"""Reading describe_jobs payloads: pure functions, checked on the shapes AWS Batch documents
(https://docs.aws.amazon.com/batch/latest/APIReference/API_DescribeJobs.html), with no emulator."""

from __future__ import annotations

from starfish_batch.launcher.executors.batch.jobs import ProcessJob, SubmittedRun
from starfish_batch.launcher.executors.batch.watch import StuckWatch, child_index, counts, failure_of, is_running


def submitted(*jobs: ProcessJob) -> SubmittedRun:
    return SubmittedRun(run_id="r", manifest_url="s3://b/r/manifest.json", jobs_url="s3://b/r/jobs.json",
                        region="eu-west-1", job_queue="q", process_jobs=list(jobs),
                        merge_job_id="m", merge_job_name="merge")


def test_counts_from_status_summaries_and_plain_jobs():
    run = submitted(ProcessJob("a", "pf-1", 0, 10_000), ProcessJob("b", "pf-2", 10_000, 1))
    described = {
        "a": {"jobId": "a", "status": "RUNNING",
              "arrayProperties": {"size": 10_000, "statusSummary": {
                  "RUNNING": 40, "SUCCEEDED": 9_000, "FAILED": 2, "RUNNABLE": 958}}},
        "b": {"jobId": "b", "status": "RUNNABLE"},
    }
    found = counts(run, described)
    assert found["SUCCEEDED"] == 9_000 and found["FAILED"] == 2 and found["RUNNING"] == 40
    assert found["RUNNABLE"] == 958 + 1
    assert sum(found.values()) == 10_001


def test_children_not_created_yet_share_the_parents_state():
    run = submitted(ProcessJob("a", "pf", 0, 50))
    # just submitted: AWS gives no statusSummary counts yet
    assert counts(run, {"a": {"jobId": "a", "status": "PENDING", "arrayProperties": {"size": 50}}})["PENDING"] == 50
    assert counts(run, {})["SUBMITTED"] == 50  # not described yet


def test_failure_takes_the_last_attempt():
    job = {
        "jobId": "a:7", "status": "FAILED", "statusReason": "Essential container in task exited",
        "arrayProperties": {"index": 7},
        "container": {"logStreamName": "old/stream", "exitCode": None},
        "attempts": [
            {"container": {"exitCode": 137, "reason": "OutOfMemoryError: Container killed due to memory usage",
                           "logStreamName": "pf/default/first"}, "statusReason": "first"},
            {"container": {"exitCode": 1, "logStreamName": "pf/default/second"}, "statusReason": "second"},
        ],
    }
    failure = failure_of(job, "fov_7", 7)
    assert (failure.exit_code, failure.log, failure.job_id) == (1, "pf/default/second", "a:7")
    assert failure.reason == "Essential container in task exited"
    assert failure.headline() == ("FOV fov_7 (index 7) failed: Essential container in task exited; "
                                  "exit code 1; job a:7")
    assert failure.attempts == 2  # report.html's attempts and retries


def test_failure_without_attempts_names_the_container_reason():
    job = {"jobId": "m", "status": "FAILED", "container": {"reason": "CannotPullContainerError: no image"}}
    failure = failure_of(job, None, None)
    assert failure.reason == "CannotPullContainerError: no image" and failure.exit_code is None
    assert failure.attempts is None
    assert failure.headline().startswith("merge failed: CannotPullContainerError")


def test_child_index_and_running():
    assert child_index({"jobId": "p:3", "arrayProperties": {"index": 12}}) == 12
    assert child_index({"jobId": "p:3"}) == 3  # emulators that leave the index out
    assert is_running({"status": "STARTING"})
    assert is_running({"status": "PENDING", "arrayProperties": {"statusSummary": {"RUNNING": 1}}})
    assert not is_running({"status": "RUNNABLE", "arrayProperties": {"statusSummary": {"RUNNABLE": 5}}})


def test_fovs_stuck_in_runnable_are_named_once_per_period_and_progress_resets_it():
    run = submitted(ProcessJob("a", "pf", 0, 4))
    waiting = counts(run, {"a": {"jobId": "a", "status": "PENDING", "arrayProperties": {
        "size": 4, "statusSummary": {"RUNNABLE": 4}}}})
    watch = StuckWatch(after=600)
    assert watch.update(waiting, 0) is None
    assert watch.update(waiting, 599) is None
    warning = watch.update(waiting, 601)
    assert warning and warning.startswith("4 FOV(s) have waited in RUNNABLE for 10 min")
    assert "more memory or vCPUs than any allowed instance type" in warning
    assert watch.update(waiting, 900) is None  # said once, not at every poll
    assert watch.update(waiting, 1202) is not None  # and again after another period
    started = counts(run, {"a": {"jobId": "a", "status": "PENDING", "arrayProperties": {
        "size": 4, "statusSummary": {"RUNNABLE": 3, "RUNNING": 1}}}})
    assert watch.update(started, 1300) is None
    assert watch.update(started, 1800) is None  # progress restarts the clock
    assert watch.update(started, 1901) is not None


def test_a_job_cancelled_by_the_queues_runnable_time_limit_says_why():
    """The queue's job_state_time_limit_action cancels a job that never started; AWS documents the
    statusReason it leaves (userguide/job_stuck_in_runnable_misconfiguration.html)."""
    job = {"jobId": "a:3", "status": "FAILED", "arrayProperties": {"index": 3},
           "statusReason": "Canceled by JobStateTimeLimit action due to reason: "
                           "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
           "container": {}, "attempts": []}
    failure = failure_of(job, "fov_3", 3)
    headline = failure.headline()
    assert headline.startswith("FOV fov_3 (index 3) failed: Canceled by JobStateTimeLimit action due to "
                               "reason: MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT (it never started")
    assert "RUNNABLE longer than the queue's time limit" in headline
    assert "no instance type allowed (instance_types) holds the job's vCPUs and memory" in headline
    # any other reason is printed as it is
    other = failure_of({"jobId": "b", "status": "FAILED", "statusReason": "Dependent Job failed"}, None, None)
    assert other.reason == "Dependent Job failed"
