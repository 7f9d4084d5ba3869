"""AWS Batch in the emulator, for the launcher's Batch tests: the module's outputs for a queue,
job definitions, buckets and a log group in moto (in process), and helpers that read what the
launcher submitted. One fixture (``aws``), imported by name by the tests that use it."""

from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace

import boto3
import pytest

from starfish_batch.core import storage
from starfish_batch.core.records import FovRecord
from starfish_batch.launcher import cli, runs
from starfish_batch.launcher.executors.batch import BatchExecutor
from starfish_batch.launcher.tf_outputs import read_outputs

REGION = "us-east-1"
RESULTS_BUCKET = "sfb-results"
DATA_BUCKET = "sfb-data"
LOG_GROUP = "/aws/batch/sfb"
EXPERIMENT = f"s3://{DATA_BUCKET}/exp/experiment.json"
RESULTS = f"s3://{RESULTS_BUCKET}/runs"
RECIPE = """\
def process_fov(fov, codebook):
    raise NotImplementedError("never called by these tests")
"""


def tf_json(values: dict) -> dict:
    """The shape of `terraform output -json`."""
    return {k: {"sensitive": False, "type": "string", "value": v} for k, v in values.items()}


@pytest.fixture
def aws(tmp_path, monkeypatch):
    """Queue, compute environment, job definitions, buckets and log group in moto; the outputs
    of the Terraform module for them in a file; a recipe; and a cheap experiment listing."""
    from moto import mock_aws  # lazy: moto ~0.6 s

    with mock_aws(config={"batch": {"use_docker": False}}):
        storage.s3_client.cache_clear()
        iam = boto3.client("iam", region_name=REGION)
        ec2 = boto3.client("ec2", region_name=REGION)
        bat = boto3.client("batch", region_name=REGION)
        s3 = boto3.client("s3", region_name=REGION)
        logs = boto3.client("logs", region_name=REGION)
        role = iam.create_role(RoleName="sfb-batch-service",
                               AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
        subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]]
        sg = ec2.create_security_group(GroupName="sfb", Description="sfb", VpcId=vpc)["GroupId"]
        ce = bat.create_compute_environment(
            computeEnvironmentName="sfb-ce", type="MANAGED", state="ENABLED", serviceRole=role,
            computeResources={"type": "FARGATE", "maxvCpus": 16, "subnets": subnets,
                              "securityGroupIds": [sg]},
        )["computeEnvironmentArn"]
        queue = bat.create_job_queue(
            jobQueueName="sfb-queue", state="ENABLED", priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}],
        )["jobQueueArn"]
        jds = {}
        for worker in ("process-fov", "merge-batch-job"):
            jds[worker] = bat.register_job_definition(
                jobDefinitionName=f"sfb-{worker}", type="container",
                containerProperties={
                    "image": f"123456789012.dkr.ecr.{REGION}.amazonaws.com/sfb-{worker}:latest",
                    "command": [worker],
                    "resourceRequirements": [{"type": "VCPU", "value": "1"},
                                             {"type": "MEMORY", "value": "2048"}],
                    "environment": [{"name": "AWS_DEFAULT_REGION", "value": REGION},
                                    {"name": "FOV_INDEX_OFFSET", "value": "0"}],
                },
            )["jobDefinitionArn"]
        for bucket in (RESULTS_BUCKET, DATA_BUCKET):
            s3.create_bucket(Bucket=bucket)
        logs.create_log_group(logGroupName=LOG_GROUP)
        values = {
            "region": REGION,
            "job_queue_arn": queue,
            "process_fov_job_definition_arn": jds["process-fov"],
            "merge_job_definition_arn": jds["merge-batch-job"],
            "results_bucket": RESULTS_BUCKET,
            "log_group_name": LOG_GROUP,
            "process_fov_repository_url": f"123456789012.dkr.ecr.{REGION}.amazonaws.com/sfb-pf",
            "merge_repository_url": f"123456789012.dkr.ecr.{REGION}.amazonaws.com/sfb-merge",
            "submitter_policy_arn": "arn:aws:iam::123456789012:policy/sfb-submitter",
            "job_queue_name": "sfb-queue",
        }
        outputs_file = tmp_path / "outputs.json"
        outputs_file.write_text(json.dumps(tf_json(values)))
        recipe = tmp_path / "recipe.py"
        recipe.write_text(RECIPE)
        fovs: list[str] = []
        real_plan = runs.plan_inputs

        def plan(url, expected=None):
            if url == EXPERIMENT and fovs:
                return list(fovs), {}
            return real_plan(url, expected)

        monkeypatch.setattr(runs, "plan_inputs", plan)
        real_images = runs.image_types
        monkeypatch.setattr(runs, "image_types", lambda url, expected=None: (
            ["primary"] if url == EXPERIMENT and fovs else real_images(url, expected)))
        yield SimpleNamespace(
            batch=bat, s3=s3, logs=logs, queue=queue, jds=jds, values=values,
            outputs_file=outputs_file, recipe=recipe, fovs=fovs, tmp_path=tmp_path,
        )
        storage.s3_client.cache_clear()


def launch(aws, *extra: str, fovs: list[str] | None = None) -> int:
    if fovs is not None:
        aws.fovs[:] = fovs
    return cli.main([
        "--executor", "batch", "--tf-outputs", str(aws.outputs_file),
        "--experiment-url", EXPERIMENT, "--recipe", str(aws.recipe), "--results-url", RESULTS,
        "--quiet", *extra,
    ])


def all_jobs(aws) -> list[dict]:
    """The jobs submitted to the queue (moto's list_jobs also lists array children; AWS does not)."""
    ids = [j["jobId"] for j in aws.batch.list_jobs(jobQueue=aws.queue)["jobSummaryList"]
           if ":" not in j["jobId"]]
    return aws.batch.describe_jobs(jobs=ids)["jobs"] if ids else []


def env_of(job: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in job["container"]["environment"]}


def results_keys(aws) -> list[str]:
    return [o["Key"] for o in aws.s3.list_objects_v2(Bucket=RESULTS_BUCKET).get("Contents", [])]


def read_jobs_file(aws, run_id: str, name: str = "jobs.json") -> dict:
    body = aws.s3.get_object(Bucket=RESULTS_BUCKET, Key=f"runs/{run_id}/{name}")["Body"].read()
    return json.loads(body)


def moto_job(job_id: str):
    """moto's own object for a job, to hold it in a state that use_docker=False skips."""
    from moto.batch.models import batch_backends  # lazy: moto ~0.6 s
    from moto.core import DEFAULT_ACCOUNT_ID  # lazy: moto ~0.6 s

    return batch_backends[DEFAULT_ACCOUNT_ID][REGION]._jobs[job_id]


def set_state(job_id: str, status: str) -> None:
    job = moto_job(job_id)
    job.status = status
    job.job_stopped = status in ("SUCCEEDED", "FAILED")


def fov_names(n: int) -> list[str]:
    return [f"fov_{i:03d}" for i in range(n)]


def put_done(aws, run_id: str, fov: str, table: bytes = b"x") -> None:
    """A FOV as its worker leaves it: the table, then the record that proves it whole."""
    manifest = read_jobs_file(aws, run_id, "manifest.json")
    record = FovRecord(fov=fov, recipe_sha256=manifest["recipe_sha256"], n_features=0, run_id=run_id,
                       index=manifest["fovs"].index(fov), nc_bytes=len(table),
                       nc_sha256=hashlib.sha256(table).hexdigest())
    aws.s3.put_object(Bucket=RESULTS_BUCKET, Key=f"runs/{run_id}/fovs/{fov}.nc", Body=table)
    aws.s3.put_object(Bucket=RESULTS_BUCKET, Key=f"runs/{run_id}/fovs/{fov}.json", Body=record.to_json())


def submitted(aws, n: int, run_id: str = "r1"):
    aws.fovs[:] = fov_names(n)
    manifest, manifest_url = runs.new_run(EXPERIMENT, str(aws.recipe), RESULTS, run_id=run_id)
    executor = BatchExecutor(read_outputs(tf_outputs=aws.outputs_file))
    return executor, manifest, executor.submit(manifest, manifest_url)
