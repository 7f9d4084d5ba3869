"""The module in a platform team's own stack, on moto: deployments side by side, the launcher
from launcher_config alone and from the SSM parameter alone, the private-subnets example.

One apply (a moto server of its own, 127.0.0.1) holds three deployments in one caller:
``sfb-one`` and ``sfb-two`` in us-east-1 (EC2, default inputs: instance, job roles and
submitter policies of their own), and ``sfb-one`` again in us-west-2 (the same name in another
region; Fargate, its own images with no repositories, a role path and a permissions boundary).
IAM is account-wide in moto as in AWS, so any name the three share fails the apply. The caller
exports nothing but ``launcher_config``; the launcher then runs from that output (``--tf-dir``)
and, with no Terraform at all, from the SSM parameter (``make run EXECUTOR=batch
DEPLOYMENT=sfb-one`` in us-west-2). The plans (the private-subnets example, a root without
subnets) share the session's moto server.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO_ROOT
from tests.support.moto import MotoServer
from tests.support.terraform import (
    MOTO_QUIRKS_OVERRIDE,
    copy_module,
    hcl,
    moto_provider,
    point_at_moto,
    run_terraform,
    terraform_env,
    terraform_init,
)
from tests.support.terraform import apply as tf_apply
from tests.support.workflow import ISS_RECIPE, LAUNCHER, demo_experiment_in_s3

pytestmark = pytest.mark.slow  # Terraform applied to moto: make test-slow

EAST, WEST = "us-east-1", "us-west-2"
# module block -> (provider alias, region, inputs beyond the name)
OWN_IMAGES = {
    "process_fov": "210987654321.dkr.ecr.us-west-2.amazonaws.com/imaging/process-fov:2.0",
    "merge": "registry.example.org/imaging/merge-batch-job:2.0",
}
BOUNDARY_NAME = "imaging-boundary"
DEPLOYMENTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "one_east": ("east", EAST, {"name_prefix": "sfb-one"}),
    "two_east": ("east", EAST, {"name_prefix": "sfb-two"}),
    "one_west": ("west", WEST, {
        "name_prefix": "sfb-one",
        "compute_type": "FARGATE",
        "create_repositories": False,
        "process_fov": {"image": OWN_IMAGES["process_fov"]},
        "merge": {"image": OWN_IMAGES["merge"]},
        "iam_role_path": "/imaging/starfish/",
    }),
}
DATA, RESULTS = "sfb-dep-data", "sfb-dep-results"
PARAMETER = "/starfish-batch/sfb-one/launcher-config"


def _log(result: subprocess.CompletedProcess | None) -> str:
    if result is None:
        return "(step not run)"
    return f"rc={result.returncode}\n{result.stdout[-5000:]}\n{result.stderr[-5000:]}"


def _write_caller(caller: Path, module: Path, url: str, common: dict[str, Any]) -> None:
    """A stack with two aliased providers (two regions of one account) calling the module three
    times, and exporting launcher_config alone."""
    caller.mkdir(parents=True, exist_ok=True)
    (module / "zz_moto_override.tf").write_text(MOTO_QUIRKS_OVERRIDE)
    source = os.path.relpath(module, caller)
    blocks = []
    for block, (alias, _, inputs) in DEPLOYMENTS.items():
        args = "\n".join(f"  {k} = {hcl(v)}" for k, v in {**common, **inputs}.items())
        blocks.append(f'module "{block}" {{\n  source = "{source}"\n  providers = {{\n    aws = aws.{alias}\n  }}\n\n'
                      f"{args}\n}}\n")
    (caller / "main.tf").write_text(
        "# Written by the tests only: three deployments in one stack.\n"
        'terraform {\n  required_providers {\n    aws = {\n      source = "hashicorp/aws"\n    }\n  }\n}\n\n'
        + moto_provider(url, alias="east", region=EAST) + "\n"
        + moto_provider(url, alias="west", region=WEST) + "\n"
        + "\n".join(blocks)
        + '\n# All a scientist\'s launcher needs (or nothing: the SSM parameter).\n'
        'output "launcher_config" {\n  value = module.one_east.launcher_config\n}\n'
    )


def _launcher_env(server: MotoServer, base: Path, region: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "TF_", "MAKE")) and k != "MFLAGS"}
    env.update(AWS_ENDPOINT_URL=server.url, AWS_REGION=region, AWS_DEFAULT_REGION=region,
               AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_EC2_METADATA_DISABLED="true",
               HOME=str(base), MPLCONFIGDIR=str(base / "mpl"))
    return env


def _job_ids(stdout: str) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in stdout.splitlines()
                if line.startswith(("process-fov ", "merge-batch-job ")))


@pytest.fixture(scope="module")
def stack(terraform_available, moto_available, tmp_path_factory) -> dict[str, Any]:
    """Apply the three deployments once; launch from launcher_config and from the SSM parameter."""
    base = tmp_path_factory.mktemp("tf-deployments")
    record: dict[str, Any] = {}
    server = MotoServer(base).start()
    try:
        iam = server.client("iam")
        service_role = iam.create_role(
            RoleName="moto-batch-service-role",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "batch.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
        )["Role"]["Arn"]
        boundary = iam.create_policy(PolicyName=BOUNDARY_NAME, PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
        )["Policy"]["Arn"]
        DEPLOYMENTS["one_west"][2]["iam_permissions_boundary"] = boundary
        record["boundary"] = boundary
        # What moto needs (a service role that exists, the default VPC said explicitly); the
        # rest are the module's defaults.
        common = {"use_default_vpc": True, "batch_service_role_arn": service_role}
        module = copy_module(base / "module")
        caller = base / "caller"
        _write_caller(caller, module, server.url, common)
        env = terraform_env(caller)
        terraform_init(caller, env)
        record["apply"] = tf_apply(caller, env)
        if record["apply"].returncode != 0:
            return record
        record["outputs"] = json.loads(run_terraform(["output", "-json"], caller, env).stdout)
        record["plan"] = run_terraform(["plan", "-detailed-exitcode", "-input=false"], caller, env)

        # get_role: list_roles leaves the permissions boundary out (moto, as AWS)
        record["roles"] = {r["RoleName"]: iam.get_role(RoleName=r["RoleName"])["Role"]
                           for r in iam.list_roles()["Roles"] if r["RoleName"].startswith("sfb-")}
        record["policies"] = {p["PolicyName"]: p for p in iam.list_policies(Scope="Local")["Policies"]}
        record["submitter_documents"] = {}
        for name, policy in record["policies"].items():
            if name.startswith("sfb-"):
                doc = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])
                document = doc["PolicyVersion"]["Document"]
                record["submitter_documents"][name] = json.loads(document) if isinstance(document, str) else document
        record["parameters"] = {
            region: json.loads(server.client("ssm", region).get_parameter(Name=PARAMETER)["Parameter"]["Value"])
            for region in (EAST, WEST)}
        record["queues"] = {region: server.client("batch", region).describe_job_queues()["jobQueues"]
                            for region in (EAST, WEST)}
        record["environments"] = {
            region: server.client("batch", region).describe_compute_environments()["computeEnvironments"]
            for region in (EAST, WEST)}
        record["ecr"] = {region: server.client("ecr", region).describe_repositories()["repositories"]
                         for region in (EAST, WEST)}

        demo_experiment_in_s3(server.client("s3"), base / "experiment", ["A1", "b_2"], DATA, RESULTS)
        experiment = f"s3://{DATA}/exp/experiment.json"
        # 1. The caller's launcher_config alone (--tf-dir runs `terraform output -json` there).
        tf_env = {**_launcher_env(server, base, EAST), "TF_DATA_DIR": env["TF_DATA_DIR"],
                  "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"}
        record["from_output"] = subprocess.run(
            [sys.executable, str(LAUNCHER), "--executor", "batch", "--tf-dir", str(caller),
             "--experiment-url", experiment, "--recipe", str(ISS_RECIPE), "--results-url", f"s3://{RESULTS}/runs",
             "--run-id", "lc-1", "--no-wait", "--quiet"],
            env=tf_env, cwd=base, capture_output=True, text=True, timeout=600, check=False)
        # 2. No Terraform at all: `make run` with the deployment's name, in the other region.
        make = (f"make run EXECUTOR=batch DEPLOYMENT=sfb-one EXPERIMENT={shlex.quote(experiment)} "
                f"RECIPE={shlex.quote(str(ISS_RECIPE))} RESULTS=s3://{RESULTS}/runs "
                "RUN_ARGS='--run-id ssm-1 --no-wait --quiet'")
        record["make_command"] = make
        record["from_parameter"] = subprocess.run(
            make, shell=True, cwd=REPO_ROOT, env={**_launcher_env(server, base, WEST), "PATH": os.environ["PATH"]},
            capture_output=True, text=True, timeout=600, check=False)
        for name, region in (("from_output", EAST), ("from_parameter", WEST)):
            ids = _job_ids(record[name].stdout)
            if len(ids) == 2:
                record[f"{name}_jobs"] = server.client("batch", region).describe_jobs(jobs=list(ids.values()))["jobs"]
        record["missing"] = subprocess.run(
            [sys.executable, str(LAUNCHER), "status", "lc-1", "--executor", "batch", "--deployment", "sfb-nope",
             "--results-url", f"s3://{RESULTS}/runs"],
            env=_launcher_env(server, base, WEST), cwd=base, capture_output=True, text=True, timeout=300, check=False)
    finally:
        server.stop()
    return record


@pytest.fixture(scope="module")
def applied(stack) -> dict[str, Any]:
    assert stack["apply"].returncode == 0, _log(stack["apply"])
    return stack


def test_three_deployments_apply_side_by_side_and_plan_clean(applied):
    """Two names in one region, one name in two regions: one account, no collision."""
    assert applied["plan"].returncode == 0, _log(applied["plan"])


def test_iam_names_carry_the_region_path_and_boundary(applied):
    roles = applied["roles"]
    ours = sorted(n for n in roles if n.startswith("sfb-"))
    assert ours == sorted([
        "sfb-one-us-east-1-instance", "sfb-one-us-east-1-job",
        "sfb-two-us-east-1-instance", "sfb-two-us-east-1-job",
        "sfb-one-us-west-2-execution", "sfb-one-us-west-2-job",
    ])
    assert sorted(p for p in applied["policies"] if p.startswith("sfb-")) == [
        "sfb-one-us-east-1-submitter", "sfb-one-us-west-2-submitter", "sfb-two-us-east-1-submitter"]
    for name in ("sfb-one-us-west-2-execution", "sfb-one-us-west-2-job"):
        assert roles[name]["Path"] == "/imaging/starfish/"
        assert roles[name]["PermissionsBoundary"]["PermissionsBoundaryArn"] == applied["boundary"]
    assert applied["policies"]["sfb-one-us-west-2-submitter"]["Path"] == "/imaging/starfish/"
    assert "PermissionsBoundary" not in roles["sfb-one-us-east-1-job"]


def test_compute_environments_are_named_after_the_deployment(applied):
    names = {region: sorted(ce["computeEnvironmentName"] for ce in envs)
             for region, envs in applied["environments"].items()}
    assert [n.rsplit("-", 1)[0] for n in names[EAST]] == ["sfb-one-ec2", "sfb-two-ec2"], names
    assert [n.rsplit("-", 1)[0] for n in names[WEST]] == ["sfb-one-fargate"], names


def test_the_ssm_parameter_holds_launcher_config_in_each_region(applied):
    (output,) = applied["outputs"]  # the caller exports nothing else
    config = applied["outputs"]["launcher_config"]["value"]
    east, west = applied["parameters"][EAST], applied["parameters"][WEST]
    assert east == config
    assert (east["region"], west["region"]) == (EAST, WEST)
    assert east["job_queue_arn"] != west["job_queue_arn"]
    assert east["config_parameter_name"] == west["config_parameter_name"] == PARAMETER
    # bring-your-own images: no repository, the URIs given are what the jobs run
    assert west["process_fov_repository_url"] is None and west["merge_repository_url"] is None
    assert (west["process_fov_image"], west["merge_image"]) == (OWN_IMAGES["process_fov"], OWN_IMAGES["merge"])
    assert applied["ecr"][WEST] == []
    assert east["process_fov_image"] == f"{east['process_fov_repository_url']}:latest"
    assert len(applied["ecr"][EAST]) == 4  # two deployments, two repositories each


def test_launcher_runs_from_the_callers_launcher_config_alone(applied):
    result = applied["from_output"]
    assert result.returncode == 0, _log(result)
    config = applied["outputs"]["launcher_config"]["value"]
    jobs = applied["from_output_jobs"]
    assert {j["jobQueue"] for j in jobs} == {config["job_queue_arn"]}
    assert all("/sfb-one-" in j["jobDefinition"] for j in jobs), [j["jobDefinition"] for j in jobs]


def test_make_run_runs_from_the_ssm_parameter_alone(applied):
    """`make run EXECUTOR=batch DEPLOYMENT=sfb-one`, no Terraform state or outputs anywhere: the
    parameter of the environment's region (us-west-2) says which queue and definitions."""
    result = applied["from_parameter"]
    assert result.returncode == 0, applied["make_command"] + "\n" + _log(result)
    west = applied["parameters"][WEST]
    jobs = applied["from_parameter_jobs"]
    assert {j["jobQueue"] for j in jobs} == {west["job_queue_arn"]}
    assert all(j["jobQueue"].split(":")[3] == WEST for j in jobs)


def test_an_unknown_deployment_is_one_clear_error(applied):
    result = applied["missing"]
    assert result.returncode != 0
    assert "SSM parameter /starfish-batch/sfb-nope/launcher-config in us-west-2 does not exist" in result.stderr, \
        result.stderr
    assert "Traceback" not in result.stderr


def test_submitter_policy_may_read_the_parameter(applied):
    """Each deployment's submitter policy may read its own parameter, and no other."""
    for name, region in (("sfb-one-us-east-1-submitter", EAST), ("sfb-one-us-west-2-submitter", WEST)):
        doc = applied["submitter_documents"][name]
        statements = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
        reads = [s for s in statements if "ssm:GetParameter" in json.dumps(s["Action"])]
        assert [(s["Action"], s["Resource"]) for s in reads] == [
            ("ssm:GetParameter", f"arn:aws:ssm:{region}:123456789012:parameter{PARAMETER}")], reads


################################################################################
# Plans on the session's moto server
################################################################################


def _plan(work: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return run_terraform(["plan", "-input=false", *args], work, env)


def test_private_subnets_example_validates_and_plans(terraform_available, moto_server, tmp_path):
    """VPC endpoints instead of a NAT gateway: S3 (gateway), ECR api and dkr, logs (and the ECS
    endpoints on EC2/SPOT); the jobs' security group reaches only those."""
    moto_server.reset()
    example = copy_module(tmp_path / "module") / "examples" / "private-subnets"
    # An override file of the example's own provider block: the same provider, on moto.
    (example / "zz_moto_override.tf").write_text(moto_provider(moto_server.url))
    env = terraform_env(example)
    terraform_init(example, env)
    valid = run_terraform(["validate", "-json"], example, env)
    assert valid.returncode == 0 and '"valid": true' in valid.stdout, _log(valid)
    plans = {}
    for compute_type in ("FARGATE", "EC2"):
        plan = _plan(example, env, f"-var=compute_type={compute_type}", f"-out={compute_type}.tfplan")
        assert plan.returncode == 0, _log(plan)
        shown = run_terraform(["show", "-json", f"{compute_type}.tfplan"], example, env)
        plans[compute_type] = json.loads(shown.stdout)
    for compute_type, plan in plans.items():
        changes = {c["address"]: c["change"]["after"] for c in plan["resource_changes"]}
        types = {c["type"] for c in plan["resource_changes"]}
        assert not types & {"aws_nat_gateway", "aws_internet_gateway", "aws_eip"}, types
        endpoints = {a.split('"')[1] if '"' in a else "s3": v for a, v in changes.items()
                     if a.startswith("aws_vpc_endpoint.")}
        wanted = {"s3", "ecr.api", "ecr.dkr", "logs"} | ({"ecs", "ecs-agent", "ecs-telemetry"}
                                                         if compute_type == "EC2" else set())
        assert set(endpoints) == wanted, endpoints
        assert endpoints["s3"]["vpc_endpoint_type"] == "Gateway"
        assert all(e["service_name"] == f"com.amazonaws.us-east-1.{k}" for k, e in endpoints.items())
        assert all(e["private_dns_enabled"] for k, e in endpoints.items() if k != "s3")
        (egress,) = changes["module.starfish_batch.aws_security_group.batch[0]"]["egress"]
        assert egress["cidr_blocks"] == [] and (egress["from_port"], egress["to_port"]) == (443, 443)
        # no public IP (the job definitions' properties are known only at apply: their roles)
        call = plan["configuration"]["root_module"]["module_calls"]["starfish_batch"]["expressions"]
        assert call["assign_public_ip"]["constant_value"] is False


def test_no_subnets_and_no_images_are_refused_at_plan(terraform_available, moto_server, tmp_path):
    """The default VPC is never a silent fallback, and create_repositories = false needs the
    images: each a one-line reason before anything is created."""
    moto_server.reset()
    work = copy_module(tmp_path / "module")
    point_at_moto(work, moto_server.url)
    env = terraform_env(work)
    terraform_init(work, env)
    result = _plan(work, env, "-var=create_batch_service_linked_role=true", "-var=create_repositories=false",
                   "-var=process_fov={image = \"registry.example.org/p:1\"}")
    assert result.returncode != 0
    text = " ".join((result.stdout + result.stderr).split())
    assert "subnet_ids is required (the jobs' subnets); use_default_vpc = true runs them" in text, text[-3000:]
    assert "create_repositories = false: give the merge-batch-job image as merge.image" in text, text[-3000:]
    assert "process-fov image as" not in text
