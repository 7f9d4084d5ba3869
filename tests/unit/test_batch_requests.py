"""The submit_job requests of a run: who sent them (the tag the submitter policy matches) and,
on a fair-share queue, the share identifier AWS requires (API_SubmitJob: shareIdentifier must be
given when the queue has a scheduling policy, and must not be otherwise)."""

from __future__ import annotations

from starfish_batch.core.manifest import Manifest
from starfish_batch.launcher.executors.batch.jobs import JOB_TAG, RUN_ID_TAG, SUBMITTER_TAG
from starfish_batch.launcher.executors.batch.requests import JobTarget, merge_request, process_requests

USERID = "AROAEXAMPLEROLEID:alice@example.org"  # an assumed role's aws:userid


def manifest(n: int) -> Manifest:
    return Manifest(run_id="r1", experiment_url="s3://d/exp/experiment.json", recipe_url="s3://b/r1/recipe.py",
                    recipe_sha256="0" * 64, results_url="s3://b", fovs=[f"fov_{i}" for i in range(n)])


def target(share: str | None = None) -> JobTarget:
    return JobTarget("queue", "pf-def", "merge-def", submitter=USERID, share_identifier=share)


def test_every_job_carries_its_submitter_and_run():
    m = manifest(10_001)  # two arrays
    requests = [*process_requests(m, "s3://b/r1/manifest.json", target()),
                merge_request(m, "s3://b/r1/manifest.json", target(), ["a", "b"])]
    assert len(requests) == 3
    for request in requests:
        assert request["tags"][SUBMITTER_TAG] == USERID
        assert request["tags"][RUN_ID_TAG] == "r1"
        assert request["propagateTags"] is True
        assert "shareIdentifier" not in request
    assert [r["tags"][JOB_TAG] for r in requests] == ["process-fov", "process-fov", "merge-batch-job"]


def test_a_fair_share_queue_gets_the_share_identifier():
    m = manifest(3)
    requests = [*process_requests(m, "s3://b/r1/manifest.json", target("starfish")),
                merge_request(m, "s3://b/r1/manifest.json", target("starfish"), ["a"])]
    assert [r["shareIdentifier"] for r in requests] == ["starfish", "starfish"]
