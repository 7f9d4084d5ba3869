"""Issue 30, case 1 (the IAM half): who may write where in the results bucket.

Before, the submitter policy (every scientist) and the job role (every job) could
``s3:PutObject`` anywhere in the results bucket: anyone in the lab could rewrite another
scientist's manifest and recipe. Now a scientist writes only under
``<results_caller_prefix><aws:userid>/`` (unless the module opts out with
``results_write_scope = "bucket"``), and the job role can never write a manifest, a recipe, a
claim or a jobs file.

How: the policy documents are the ones Terraform renders (``terraform plan`` of the module
against a moto server, the S3 documents read from the plan), evaluated by
``@cloud-copilot/iam-simulate`` (tests/support/iam.py), not by moto: moto 5.2's IAM
enforcement has no policy variables and no conditions, so it cannot evaluate ``${aws:userid}``.
"""

from __future__ import annotations

import json
import shutil

import pytest

from tests.support import iam
from tests.support.terraform import copy_module, moto_provider, run_terraform, terraform_env, terraform_init

ACCOUNT = "123456789012"
BUCKET = "lab-results"
ALICE = "AIDAALICEALICEALICE01"
BOB = "AIDABOBBOBBOBBOBBOB02"
CAROL_SESSION = "AROACAROLCAROLCAROL03:carol@lab.org"  # an assumed role's aws:userid


@pytest.fixture(scope="module")
def simulator():
    if shutil.which("terraform") is None:
        pytest.skip("terraform is not installed: the rendered policies cannot be evaluated")
    why = iam.install()
    if why:
        pytest.skip(why)


def _rendered(plan_json: dict) -> dict[str, dict[str, dict]]:
    """module name -> data source name -> its rendered policy document, for every
    aws_iam_policy_document the plan could read."""
    found: dict[str, dict[str, dict]] = {}
    root = plan_json.get("prior_state", {}).get("values", {}).get("root_module", {})
    for module in root.get("child_modules", []):
        name = module["address"].split(".", 1)[1]
        for r in module.get("resources", []):
            if r["mode"] == "data" and r["type"] == "aws_iam_policy_document" and r["values"].get("json"):
                found.setdefault(name, {})[r["name"]] = json.loads(r["values"]["json"])
    return found


SCOPES = ("caller", "bucket")
STACK = """terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
  }
}

"""
CALL = """
module "%(scope)s" {
  source                  = "../module"
  name_prefix             = "sfb-%(scope)s"
  create_results_bucket   = false
  results_bucket_name     = "%(bucket)s"
  experiment_s3_locations = ["s3://lab-data/experiments"]
  results_write_scope     = "%(scope)s"
}
"""


@pytest.fixture(scope="module")
def policies(simulator, moto_endpoint, tmp_path_factory) -> dict[str, dict[str, dict]]:
    """scope ("caller", "bucket") -> {"submitter_results": ..., "job": ...}, as Terraform renders
    them: one plan of a stack that calls the module once per scope."""
    base = tmp_path_factory.mktemp("iam")
    copy_module(base / "module")
    stack = base / "stack"
    stack.mkdir()
    calls = "".join(CALL % {"scope": scope, "bucket": BUCKET} for scope in SCOPES)
    (stack / "main.tf").write_text(STACK + moto_provider(moto_endpoint) + calls)
    env = terraform_env(stack)
    terraform_init(stack, env)
    targets = [f"-target=module.{scope}.data.aws_iam_policy_document.{doc}"
               for scope in SCOPES for doc in ("submitter_results", "job")]
    plan = run_terraform(["plan", "-input=false", "-refresh=false", "-out", "scopes.plan", *targets], stack, env)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    shown = run_terraform(["show", "-json", "scopes.plan"], stack, env)
    assert shown.returncode == 0, shown.stderr
    rendered = _rendered(json.loads(shown.stdout))
    for scope in SCOPES:
        assert "job" in rendered.get(scope, {}), rendered
        assert "submitter_results" in rendered[scope], (
            f"the submitter's results statements are not a document of their own: rendered {sorted(rendered[scope])}")
    return rendered


def _answers(policy: dict, cases: list[tuple]) -> dict[tuple, str]:
    """IAM's answer to each (aws:userid, action, key, principal) under ``policy`` (one simulator run)."""
    requests = [{"principal": f"arn:aws:iam::{ACCOUNT}:{principal}", "action": action,
                 "resource": f"arn:aws:s3:::{BUCKET}/{key}", "accountId": ACCOUNT,
                 "context": {"aws:userid": userid}} for userid, action, key, principal in cases]
    return dict(zip(cases, iam.simulate({"p": policy}, requests), strict=True))


def _check(policy: dict, expected: dict[tuple, str]) -> None:
    got = _answers(policy, list(expected))
    assert {case: got[case] for case in expected if got[case] != expected[case]} == {}


USER, JOB = "user/someone", "assumed-role/job/task"


def test_a_scientist_writes_only_under_their_own_folder(policies):
    own, other = f"users/{ALICE}/run-1", f"users/{BOB}/run-1"
    carol = f"users/{CAROL_SESSION}/run-1/manifest.json"
    expected = {
        (ALICE, "s3:PutObject", f"{own}/manifest.json", USER): "Allowed",
        (ALICE, "s3:PutObject", f"{own}/fovs/A1.nc", USER): "Allowed",
        (ALICE, "s3:DeleteObject", f"{own}/launcher.lock", USER): "Allowed",
        (ALICE, "s3:DeleteObject", f"{other}/launcher.lock", USER): "ImplicitlyDenied",
        # results are shared for reading: status, reports
        (ALICE, "s3:GetObject", f"{other}/summary.json", USER): "Allowed",
        # an assumed role's aws:userid ("<role id>:<session>") is its own folder too
        (CAROL_SESSION, "s3:PutObject", carol, "assumed-role/scientist/carol"): "Allowed",
        (ALICE, "s3:PutObject", carol, USER): "ImplicitlyDenied",
    }
    for key in (f"{other}/manifest.json", f"{other}/recipe.py", f"{other}/fovs/A1.json", "run-9/manifest.json",
                f"users/{ALICE}x/run-1/manifest.json"):
        expected[(ALICE, "s3:PutObject", key, USER)] = "ImplicitlyDenied"
    _check(policies["caller"]["submitter_results"], expected)


def test_the_bucket_wide_write_is_an_explicit_opt_out(policies):
    _check(policies["bucket"]["submitter_results"],
           {(ALICE, "s3:PutObject", f"users/{BOB}/run-1/manifest.json", USER): "Allowed"})


def test_a_job_writes_outputs_never_a_manifest_or_a_recipe(policies):
    run = f"users/{BOB}/run-1"
    expected = {("AROAJOBROLE:task", "s3:PutObject", f"{run}/{key}", JOB): "Allowed"
                for key in ("fovs/A1.nc", "fovs/A1.json", "summary.json", "merged_decoded_fovs.nc",
                            ".merge-staging/0123456789ab/qc.png")}
    for key in ("manifest.json", "manifest-resume-3.json", "recipe.py", "launcher.lock", "jobs.json",
                "jobs-resume-1.json"):
        expected[("AROAJOBROLE:task", "s3:PutObject", f"{run}/{key}", JOB)] = "ExplicitlyDenied"
    _check(policies["caller"]["job"], expected)
