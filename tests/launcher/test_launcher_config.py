"""The launcher from the module's one launcher_config: a caller's output holding only it
(--tf-outputs / --tf-dir), or its SSM parameter (--config-parameter, --deployment), against
in-process moto (SSM is real there; Batch finishes jobs at submission)."""

from __future__ import annotations

import json

import boto3
import pytest

from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.launcher import cli
from starfish_batch.launcher.tf_outputs import parameter_name, parse_outputs, read_outputs
from tests.support.batch import EXPERIMENT, REGION, RESULTS, tf_json

PARAMETER = "/starfish-batch/sfb/launcher-config"


def _submitted(aws) -> dict[str, str]:
    """The job queue of every job moto holds."""
    found = {}
    for status in ("SUCCEEDED", "FAILED", "SUBMITTED", "RUNNABLE", "RUNNING"):
        for job in aws.batch.list_jobs(jobQueue=aws.queue, jobStatus=status)["jobSummaryList"]:
            found[job["jobId"]] = job["jobName"]
    return found


def _launch(aws, *flags: str, run_id: str) -> int:
    aws.fovs[:] = ["fov_000", "fov_001"]
    return cli.main(["--executor", "batch", *flags, "--experiment-url", EXPERIMENT, "--recipe",
                     str(aws.recipe), "--results-url", RESULTS, "--run-id", run_id, "--no-wait", "--quiet"])


def test_a_caller_exporting_only_launcher_config(aws, tmp_path):
    """`terraform output -json` of a stack that re-exports launcher_config and nothing else."""
    config = {**aws.values, "process_fov_repository_url": None, "merge_repository_url": None,
              "compute_type": "EC2", "schema": 1}
    outputs = tmp_path / "only-config.json"
    outputs.write_text(json.dumps({"launcher_config": {"sensitive": False, "type": ["object", {}], "value": config}}))
    read = read_outputs(tf_outputs=outputs)
    assert read.job_queue_arn == aws.queue and read.extra["compute_type"] == "EC2"
    assert read.extra["process_fov_repository_url"] is None  # bring-your-own images: no repository
    assert _launch(aws, "--tf-outputs", str(outputs), run_id="only-config") == 0
    assert len(_submitted(aws)) >= 2


def test_launcher_config_wins_over_stale_separate_outputs():
    config = {"region": "eu-west-1", "job_queue_arn": "arn:aws:batch:eu-west-1:123456789012:job-queue/new",
              "process_fov_job_definition_arn": "p", "merge_job_definition_arn": "m", "results_bucket": "b",
              "log_group_name": "/aws/batch/x", "submitter_policy_arn": "s"}
    stale = {**config, "job_queue_arn": "arn:aws:batch:eu-west-1:123456789012:job-queue/old"}
    read = parse_outputs(tf_json({**stale, "launcher_config": config}), "x")
    assert read.job_queue_arn.endswith("/new")
    with pytest.raises(StarfishBatchError, match="launcher_config in x is not an object"):
        parse_outputs({"launcher_config": "oops"}, "x")


def test_the_ssm_parameter_alone(aws, monkeypatch):
    """--deployment NAME reads /starfish-batch/NAME/launcher-config in the environment's region:
    no Terraform, no outputs file."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name=PARAMETER, Type="String", Value=json.dumps({**aws.values, "schema": 1}))
    assert parameter_name("sfb") == PARAMETER
    assert read_outputs(deployment="sfb").source == f"SSM parameter {PARAMETER} in {REGION}"
    assert _launch(aws, "--deployment", "sfb", run_id="from-ssm") == 0
    assert _launch(aws, "--config-parameter", PARAMETER, run_id="from-ssm-2") == 0
    assert len(_submitted(aws)) >= 4


def test_parameter_errors_are_one_clear_line(aws, monkeypatch, capsys):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with pytest.raises(StarfishBatchError, match=rf"SSM parameter /starfish-batch/nope/launcher-config in {REGION} "
                                                 "does not exist: check the deployment's name and region"):
        read_outputs(deployment="nope")
    boto3.client("ssm", region_name=REGION).put_parameter(Name="/x/not-json", Type="String", Value="hello")
    with pytest.raises(StarfishBatchError, match="is not JSON"):
        read_outputs(config_parameter="/x/not-json")
    with pytest.raises(StarfishBatchError, match="give one of --tf-outputs, --deployment, not 2"):
        read_outputs(tf_outputs="x.json", deployment="sfb")
    with pytest.raises(StarfishBatchError, match="give the deployment's name"):
        read_outputs(deployment="a/b")
    assert _launch(aws, "--deployment", "nope", run_id="never") != 0
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err
    assert not _submitted(aws)


def test_no_region_to_read_the_parameter_in(aws, monkeypatch):
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(StarfishBatchError, match="no AWS region to read the SSM parameter .* set AWS_REGION"):
        read_outputs(deployment="sfb")
