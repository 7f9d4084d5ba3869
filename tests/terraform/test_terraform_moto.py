"""Apply the module against moto for EC2, SPOT and FARGATE.

Each compute type gets its own moto server (127.0.0.1, a free port) and its
own copy of the module, and the three apply / output / plan / describe /
destroy cycles run in parallel threads: creating and deleting a job queue
takes moto-side waits of 30 s and 60 s, which would add up to minutes if run
one after the other. The tests then check what each cycle recorded.
"""

from __future__ import annotations

import json
import re
import subprocess
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.support.moto import MotoServer
from tests.support.terraform import (
    EXAMPLES,
    copy_module,
    run_terraform,
    terraform_env,
    terraform_init,
)

COMPUTE_TYPES = ["EC2", "SPOT", "FARGATE"]
ACCOUNT = r"\d{12}"
REGION = "us-east-1"
LOCAL_IMAGES = {
    "process_fov_image": "localhost/starfish-batch-process-fov:test",
    "merge_image": "localhost/starfish-batch-merge-batch-job:test",
}
FORMS = {
    "region": rf"^{REGION}$",
    "job_queue_arn": rf"^arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/[A-Za-z0-9_-]+$",
    "process_fov_job_definition_arn": rf"^arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/[a-z0-9-]+-process-fov:\d+$",
    "merge_job_definition_arn": rf"^arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/[a-z0-9-]+-merge-batch-job:\d+$",
    "results_bucket": r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
    "log_group_name": r"^/aws/batch/[a-z0-9-]+$",
    "process_fov_repository_url": rf"^{ACCOUNT}\.dkr\.ecr\.{REGION}\.amazonaws\.com/[a-z0-9-]+/process-fov$",
    "merge_repository_url": rf"^{ACCOUNT}\.dkr\.ecr\.{REGION}\.amazonaws\.com/[a-z0-9-]+/merge-batch-job$",
    "submitter_policy_arn": rf"^arn:aws:iam::{ACCOUNT}:policy/[a-z0-9-]+-submitter$",
}


def _test_vars(compute_type: str, server: MotoServer) -> dict[str, Any]:
    """What moto needs (a service role that exists in it) plus per-type variations."""
    tf_vars: dict[str, Any] = {"ecr_force_delete": True, "results_bucket_force_destroy": True}
    if compute_type == "SPOT":
        # A plain role created beforehand, passed by ARN.
        iam = server.client("iam")
        role = iam.create_role(
            RoleName="moto-batch-service-role",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "batch.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )
        tf_vars["batch_service_role_arn"] = role["Role"]["Arn"]
    else:
        # The module creates the service-linked role.
        tf_vars["create_batch_service_linked_role"] = True
    if compute_type == "EC2":
        tf_vars.update(LOCAL_IMAGES)
    if compute_type == "FARGATE":
        tf_vars["image_tag"] = "v1.2.3"
        tf_vars["merge_ephemeral_storage"] = 50
    return tf_vars


def _policy_document(doc: Any) -> dict:
    return json.loads(doc) if isinstance(doc, str) else doc


def _describe(server: MotoServer, out: dict[str, Any], compute_type: str) -> dict[str, Any]:
    """Everything the tests check, read back from moto."""
    batch, iam, s3 = server.client("batch"), server.client("iam"), server.client("s3")
    ec2, ecr, logs = server.client("ec2"), server.client("ecr"), server.client("logs")
    found: dict[str, Any] = {}
    found["queues"] = batch.describe_job_queues(jobQueues=[out["job_queue_arn"]])["jobQueues"]
    found["compute_environments"] = batch.describe_compute_environments(
        computeEnvironments=[out["compute_environment_arn"]]
    )["computeEnvironments"]
    found["job_definitions"] = {
        jd["jobDefinitionArn"]: jd
        for jd in batch.describe_job_definitions(
            jobDefinitions=[out["process_fov_job_definition_arn"], out["merge_job_definition_arn"]]
        )["jobDefinitions"]
    }

    job_role = out["job_role_arn"].rsplit("/", 1)[1]
    found["job_role"] = iam.get_role(RoleName=job_role)["Role"]
    found["job_role_policies"] = {
        name: _policy_document(iam.get_role_policy(RoleName=job_role, PolicyName=name)["PolicyDocument"])
        for name in iam.list_role_policies(RoleName=job_role)["PolicyNames"]
    }
    policy = iam.get_policy(PolicyArn=out["submitter_policy_arn"])["Policy"]
    found["submitter_policy"] = _policy_document(
        iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])["PolicyVersion"][
            "Document"
        ]
    )
    execution_arn = json.dumps(found["job_definitions"]).split('"executionRoleArn": "')
    if len(execution_arn) > 1:
        name = execution_arn[1].split('"', 1)[0].rsplit("/", 1)[1]
        found["execution_role_policies"] = {
            n: _policy_document(iam.get_role_policy(RoleName=name, PolicyName=n)["PolicyDocument"])
            for n in iam.list_role_policies(RoleName=name)["PolicyNames"]
        }

    resources = found["compute_environments"][0]["computeResources"]
    if "launchTemplate" in resources:
        found["launch_template"] = ec2.describe_launch_template_versions(
            LaunchTemplateId=resources["launchTemplate"]["launchTemplateId"], Versions=["$Latest"]
        )["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    found["security_groups"] = ec2.describe_security_groups(GroupIds=resources["securityGroupIds"])["SecurityGroups"]

    bucket = out["results_bucket"]
    found["bucket"] = {
        "public_access_block": s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"],
        "encryption": s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"],
        "policy": json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]),
        "versioning": s3.get_bucket_versioning(Bucket=bucket).get("Status"),
        "lifecycle": s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"],
    }
    found["repositories"] = {r["repositoryUri"]: r for r in ecr.describe_repositories()["repositories"]}
    found["ecr_lifecycle"] = {
        name: json.loads(ecr.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"])
        for name in (r["repositoryName"] for r in found["repositories"].values())
    }
    found["log_groups"] = logs.describe_log_groups(logGroupNamePrefix=out["log_group_name"])["logGroups"]
    return found


def _leftovers(server: MotoServer, out: dict[str, Any]) -> dict[str, Any]:
    batch, iam, ecr, s3 = (server.client(s) for s in ("batch", "iam", "ecr", "s3"))
    prefix = out["job_queue_name"].removesuffix("-queue")
    return {
        "queues": [q["jobQueueName"] for q in batch.describe_job_queues()["jobQueues"] if q.get("status") != "DELETED"],
        "job_definitions": [
            jd["jobDefinitionName"] for jd in batch.describe_job_definitions(status="ACTIVE")["jobDefinitions"]
        ],
        "roles": [r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(prefix)],
        "policies": [p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"]],
        "repositories": [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]],
        "buckets": [b["Name"] for b in s3.list_buckets()["Buckets"]],
    }


def _cycle(compute_type: str, base: Path) -> dict[str, Any]:
    """apply, output, plan, describe, destroy: what happened at each step."""
    record: dict[str, Any] = {"compute_type": compute_type}
    base.mkdir(parents=True, exist_ok=True)
    server = MotoServer(base)
    try:
        server.start()
        work = copy_module(base / "module")
        (work / "zz_moto_override.tf").write_text(server.provider_override())
        env = terraform_env(work)
        terraform_init(work, env)
        tf_vars = _test_vars(compute_type, server)
        record["vars"] = tf_vars
        (work / "moto.tfvars.json").write_text(json.dumps(tf_vars, indent=2))
        var_files = [f"-var-file=examples/terraform/{EXAMPLES[compute_type]}", "-var-file=moto.tfvars.json"]

        record["apply"] = run_terraform(["apply", "-auto-approve", "-input=false", *var_files], work, env)
        if record["apply"].returncode == 0:
            output = run_terraform(["output", "-json"], work, env)
            record["output"] = output
            outputs = {k: v["value"] for k, v in json.loads(output.stdout or "{}").items()}
            record["outputs"] = outputs
            record["plan"] = run_terraform(["plan", "-detailed-exitcode", "-input=false", *var_files], work, env)
            record["moto"] = _describe(server, outputs, compute_type)
        record["destroy"] = run_terraform(["destroy", "-auto-approve", "-input=false", *var_files], work, env)
        if record["destroy"].returncode == 0 and "outputs" in record:
            record["leftovers"] = _leftovers(server, record["outputs"])
    except Exception:  # recorded, and reported by the tests
        record["error"] = traceback.format_exc()
    finally:
        server.stop()
    return record


@pytest.fixture(scope="module")
def cycles(terraform_available, moto_available, tmp_path_factory) -> dict[str, dict[str, Any]]:
    base = tmp_path_factory.mktemp("tf-moto")
    with ThreadPoolExecutor(max_workers=len(COMPUTE_TYPES)) as pool:
        futures = {ct: pool.submit(_cycle, ct, base / ct.lower()) for ct in COMPUTE_TYPES}
        return {ct: f.result() for ct, f in futures.items()}


def _log(result: subprocess.CompletedProcess[str] | None) -> str:
    if result is None:
        return "(step not run)"
    return f"rc={result.returncode}\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"


@pytest.fixture(params=COMPUTE_TYPES)
def cycle(request, cycles) -> dict[str, Any]:
    record = cycles[request.param]
    assert "error" not in record, record["error"]
    return record


@pytest.fixture
def applied(cycle) -> dict[str, Any]:
    assert cycle["apply"].returncode == 0, _log(cycle["apply"])
    return cycle


def test_apply_succeeds(cycle):
    assert cycle["apply"].returncode == 0, _log(cycle["apply"])


def test_contract_outputs_have_the_right_form(applied):
    outputs = applied["outputs"]
    for name, form in FORMS.items():
        assert name in outputs, f"missing output {name}"
        assert isinstance(outputs[name], str) and re.match(form, outputs[name]), (
            f"output {name} = {outputs[name]!r} does not match {form}"
        )
    assert outputs["compute_type"] == applied["compute_type"]


def test_second_plan_shows_no_change(applied):
    plan = applied["plan"]
    assert plan.returncode == 0, f"plan after apply is not empty (2 = changes):\n{_log(plan)}"


def test_destroy_succeeds(cycle):
    assert cycle.get("destroy") is not None and cycle["destroy"].returncode == 0, _log(cycle.get("destroy"))
    left = cycle.get("leftovers", {})
    assert all(not v for v in left.values()), f"left in moto after destroy: {left}"


def test_job_queue(applied):
    (queue,) = applied["moto"]["queues"]
    assert queue["jobQueueName"] == applied["outputs"]["job_queue_name"]
    assert queue["state"] == "ENABLED"
    assert queue["priority"] == 1
    assert [o["computeEnvironment"] for o in queue["computeEnvironmentOrder"]] == [
        applied["outputs"]["compute_environment_arn"]
    ]


def test_compute_environment(applied):
    (ce,) = applied["moto"]["compute_environments"]
    ct = applied["compute_type"]
    resources = ce["computeResources"]
    assert ce["type"] == "MANAGED" and ce["state"] == "ENABLED"
    assert resources["type"] == ct
    assert resources["subnets"], "no subnet (default VPC expected)"
    (sg,) = applied["moto"]["security_groups"]
    assert sg["IpPermissions"] == [], "the created security group must allow no ingress"
    assert [(p["IpProtocol"], p.get("FromPort"), p.get("ToPort")) for p in sg["IpPermissionsEgress"]] == [
        ("tcp", 443, 443)
    ]
    if "batch_service_role_arn" in applied["vars"]:
        assert ce["serviceRole"] == applied["vars"]["batch_service_role_arn"]
    else:
        assert "AWSServiceRoleFor" in ce["serviceRole"]
    if ct == "FARGATE":
        assert "launchTemplate" not in resources and "instanceRole" not in resources
        return
    assert resources["instanceRole"].endswith("-instance")
    assert resources["allocationStrategy"] == (
        "SPOT_PRICE_CAPACITY_OPTIMIZED" if ct == "SPOT" else "BEST_FIT_PROGRESSIVE"
    )
    template = applied["moto"]["launch_template"]
    assert template["MetadataOptions"]["HttpTokens"] == "required"
    (device,) = template["BlockDeviceMappings"]
    assert device["Ebs"]["Encrypted"] is True
    assert device["Ebs"]["VolumeType"] == "gp3"


def test_job_definitions(applied):
    outputs, ct = applied["outputs"], applied["compute_type"]
    jds = applied["moto"]["job_definitions"]
    expected = {
        outputs["process_fov_job_definition_arn"]: "process-fov",
        outputs["merge_job_definition_arn"]: "merge-batch-job",
    }
    assert set(jds) == set(expected)
    for arn, worker in expected.items():
        jd = jds[arn]
        props = jd["containerProperties"]
        assert jd["type"] == "container"
        assert jd["platformCapabilities"] == (["FARGATE"] if ct == "FARGATE" else ["EC2"])
        assert props["command"] == [worker]
        env = {e["name"]: e["value"] for e in props["environment"]}
        assert env["FOV_INDEX_OFFSET"] == "0"
        assert not [n for n in env if n.startswith(("STARFISH_", "SLICEDIMAGE_"))]
        assert props["jobRoleArn"] == outputs["job_role_arn"]
        assert {r["type"] for r in props["resourceRequirements"]} == {"VCPU", "MEMORY"}
        log = props["logConfiguration"]
        assert log["logDriver"] == "awslogs"
        assert log["options"]["awslogs-group"] == outputs["log_group_name"]
        # the image: local tags where given, else <repository url>:<image_tag>
        if ct == "EC2":
            key = "process_fov_image" if worker == "process-fov" else "merge_image"
            assert props["image"] == LOCAL_IMAGES[key]
        else:
            repo = outputs["process_fov_repository_url" if worker == "process-fov" else "merge_repository_url"]
            assert props["image"] == f"{repo}:{outputs['image_tag']}"
        if ct == "FARGATE":
            assert props["executionRoleArn"].endswith("-execution")
            assert props["networkConfiguration"]["assignPublicIp"] == "ENABLED"
        # local disk for the merged table: the merge job on Fargate only
        disk = {"sizeInGiB": 50} if (ct == "FARGATE" and worker == "merge-batch-job") else None
        assert props.get("ephemeralStorage") == disk, (worker, props.get("ephemeralStorage"))
        # timeout and retry strategy
        assert jd["timeout"]["attemptDurationSeconds"] >= 60
        strategy = jd["retryStrategy"]
        assert 1 <= strategy["attempts"] <= 10
        rules = strategy["evaluateOnExit"]
        assert 2 <= len(rules) <= 5
        assert {"onStatusReason": "Host EC2*", "action": "RETRY"} in [
            {**r, "action": r["action"].upper()} for r in rules
        ]
        assert any(r.get("onReason", "").startswith("CannotPullContainerError") for r in rules)
        last = rules[-1]
        assert last["action"].upper() == "EXIT" and last.get("onReason") == "*", rules
        assert all(r["action"].upper() == "RETRY" for r in rules[:-1])


def _statements(doc: dict) -> list[dict]:
    statements = doc["Statement"]
    return statements if isinstance(statements, list) else [statements]


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def test_job_role_is_least_privilege(applied):
    outputs = applied["outputs"]
    bucket_arn = f"arn:aws:s3:::{outputs['results_bucket']}"
    trust = _policy_document(applied["moto"]["job_role"]["AssumeRolePolicyDocument"])
    assert _statements(trust)[0]["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    (policy,) = applied["moto"]["job_role_policies"].values()
    statements = _statements(policy)
    resources = [r for s in statements for r in _as_list(s["Resource"])]
    assert "*" not in resources
    actions = {a for s in statements for a in _as_list(s["Action"])}
    assert "s3:DeleteObject" not in actions
    assert not [a for a in actions if "*" in a]
    writes = [s for s in statements if "s3:PutObject" in _as_list(s["Action"])]
    assert writes and all(_as_list(s["Resource"]) == [f"{bucket_arn}/*"] for s in writes)
    # experiments from the example tfvars are readable, nothing else
    reads = [r for s in statements if "s3:GetObject" in _as_list(s["Action"]) for r in _as_list(s["Resource"])]
    assert f"{bucket_arn}/*" in reads
    assert any(r.startswith("arn:aws:s3:::spacetx-experiments") for r in reads)


def test_submitter_policy_is_scoped_to_this_queue(applied):
    outputs = applied["outputs"]
    statements = _statements(applied["moto"]["submitter_policy"])
    submit = [s for s in statements if "batch:SubmitJob" in _as_list(s["Action"])]
    (submit,) = submit
    resources = _as_list(submit["Resource"])
    assert outputs["job_queue_arn"] in resources
    for arn in (outputs["process_fov_job_definition_arn"], outputs["merge_job_definition_arn"]):
        assert arn.rsplit(":", 1)[0] + ":*" in resources
    assert "*" not in resources
    for statement in statements:
        actions = _as_list(statement["Action"])
        assert not [a for a in actions if a.endswith(":*") or a == "*"], statement
        assert all(a.split(":")[0] in {"batch", "s3", "logs", "kms"} for a in actions), statement
        if "*" in _as_list(statement["Resource"]):
            # only Batch's read-only calls, which take no resource-level scope
            assert all(re.match(r"batch:(Describe|List)", a) for a in actions), statement
    # the launcher tags jobs at submission and `cancel RUN_ID` stops them: only tagged jobs
    by_sid = {s.get("Sid"): s for s in statements}
    assert _as_list(by_sid["TagJobsAtSubmission"]["Action"]) == ["batch:TagResource"]
    assert by_sid["TagJobsAtSubmission"]["Condition"] == {"StringEquals": {"batch:CreateAction": "SubmitJob"}}
    assert sorted(_as_list(by_sid["CancelOwnRuns"]["Action"])) == ["batch:CancelJob", "batch:TerminateJob"]
    assert by_sid["CancelOwnRuns"]["Condition"] == {"Null": {"aws:ResourceTag/starfish-batch:run-id": "false"}}
    for sid in ("TagJobsAtSubmission", "CancelOwnRuns"):
        assert all(r.endswith(":job/*") for r in _as_list(by_sid[sid]["Resource"]))
    log_reads = [s for s in statements if "logs:GetLogEvents" in _as_list(s["Action"])]
    assert log_reads and all(outputs["log_group_name"] in r for s in log_reads for r in _as_list(s["Resource"]))


def test_fargate_execution_role(applied):
    if applied["compute_type"] != "FARGATE":
        assert "execution_role_policies" not in applied["moto"]
        return
    (policy,) = applied["moto"]["execution_role_policies"].values()
    for statement in _statements(policy):
        if "*" in _as_list(statement["Resource"]):
            assert _as_list(statement["Action"]) == ["ecr:GetAuthorizationToken"]


def test_results_bucket(applied):
    bucket = applied["moto"]["bucket"]
    assert all(bucket["public_access_block"].values()) and len(bucket["public_access_block"]) == 4
    (rule,) = bucket["encryption"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    (deny,) = bucket["policy"]["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert bucket["versioning"] == "Enabled"
    assert any(r.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation") for r in bucket["lifecycle"])


def test_repositories_and_log_group(applied):
    outputs = applied["outputs"]
    repos = applied["moto"]["repositories"]
    assert set(repos) == {outputs["process_fov_repository_url"], outputs["merge_repository_url"]}
    for repo in repos.values():
        assert repo["imageScanningConfiguration"]["scanOnPush"] is True
    for policy in applied["moto"]["ecr_lifecycle"].values():
        assert policy["rules"]
    (group,) = applied["moto"]["log_groups"]
    assert group["logGroupName"] == outputs["log_group_name"]
    assert group["retentionInDays"] == 90


def test_invalid_fargate_size_is_refused_at_plan(terraform_available, moto_server, tmp_path):
    """A vCPU/memory pair Fargate does not offer fails the plan, before anything is created."""
    moto_server.reset()
    work = copy_module(tmp_path / "module")
    (work / "zz_moto_override.tf").write_text(moto_server.provider_override())
    env = terraform_env(work)
    terraform_init(work, env)
    result = run_terraform(
        [
            "plan",
            "-input=false",
            "-var=compute_type=FARGATE",
            "-var=process_fov_vcpus=1",
            "-var=process_fov_memory=1000",
        ],
        work,
        env,
    )
    assert result.returncode != 0
    assert "is not a Fargate size" in result.stdout + result.stderr
