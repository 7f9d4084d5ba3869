"""Offline checks of the Terraform module: fmt, validate, the examples, checkov."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from starfish_batch.launcher.tf_outputs import REQUIRED
from tests.support.terraform import (
    ALL_EXAMPLES,
    REPO_ROOT,
    copy_module,
    run_terraform,
    terraform_env,
    terraform_files,
    terraform_init,
)

CONTRACT_OUTPUTS = set(REQUIRED)  # what the launcher reads: the contract in one place


@pytest.fixture(scope="module")
def initialised(terraform_available, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A copy of the module, initialised once from the provider mirror."""
    work = copy_module(tmp_path_factory.mktemp("tf-static") / "module")
    env = terraform_env(work)
    terraform_init(work, env)
    return work, env


def test_fmt(terraform_available, tmp_path):
    files = terraform_files()
    assert files, "no Terraform file found"
    for rel in files:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / rel, tmp_path / rel)
    result = run_terraform(["fmt", "-check", "-recursive", "-diff"], tmp_path, terraform_env(tmp_path))
    assert result.returncode == 0, f"terraform fmt -check failed:\n{result.stdout}\n{result.stderr}"


def test_validate(initialised):
    work, env = initialised
    result = run_terraform(["validate", "-json"], work, env)
    assert result.returncode == 0, f"terraform validate failed:\n{result.stdout}\n{result.stderr}"
    assert '"valid": true' in result.stdout


@pytest.fixture(scope="module")
def copied(terraform_available, tmp_path_factory) -> Path:
    """A copy of the module with its examples (examples/<name>, which call it as ../..)."""
    return copy_module(tmp_path_factory.mktemp("tf-examples") / "module")


@pytest.mark.parametrize("name", sorted(ALL_EXAMPLES))
def test_example_is_a_valid_root_module_calling_the_module(copied, name):
    """Each example: a provider block, the module called from ../.., and it validates."""
    example = copied / "examples" / name
    text = "\n".join(p.read_text() for p in sorted(example.glob("*.tf")))
    assert re.search(r'^provider "aws" \{', text, re.M), f"examples/{name} has no provider block"
    assert re.search(r'^module "starfish_batch" \{\n\s+source\s+=\s+"\.\./\.\."', text, re.M), text
    env = terraform_env(example)
    terraform_init(example, env)
    result = run_terraform(["validate", "-json"], example, env)
    assert result.returncode == 0 and '"valid": true' in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("name", sorted(ALL_EXAMPLES))
def test_example_re_exports_launcher_config_not_copies_of_the_contract(name):
    """`--tf-dir examples/<name>` reads launcher_config (the module's one object, which cannot
    drift from what the launcher reads); no example keeps its own copy of the contract outputs."""
    text = (REPO_ROOT / "examples" / name / "outputs.tf").read_text()
    exports = r'^output "launcher_config" \{\n(?:.*\n)*?\s+value\s+=\s+module\.starfish_batch\.launcher_config\n'
    assert re.search(exports, text, re.M), f"examples/{name}/outputs.tf does not re-export launcher_config"
    exported = set(re.findall(r'^output "([^"]+)"', text, re.M))
    assert not (exported & (CONTRACT_OUTPUTS - {"submitter_policy_arn"})), exported


def test_module_configures_no_provider():
    """A provider block in the module would stop callers using count, for_each, depends_on or
    `providers = {...}`, and override their provider settings."""
    for tf in REPO_ROOT.glob("*.tf"):
        assert not re.search(r'^\s*provider\s+"', tf.read_text(), re.M), f"{tf.name} configures a provider"
    assert (REPO_ROOT / "main.tf").is_file()


def _console(initialised, *args: str) -> subprocess.CompletedProcess:
    """``terraform console`` with ``args``, asked for var.compute_type (validates every variable)."""
    work, env = initialised
    return subprocess.run(
        ["terraform", "console", *args, "-no-color"],
        cwd=work,
        env=env,
        input="var.compute_type\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_invalid_values_are_rejected(initialised):
    result = _console(initialised, "-var", "compute_type=GPU", "-var", "name_prefix=Bad_Name",
                      "-var", "merge={ephemeral_storage = 10}", "-var", "process_fov={memory = 100}",
                      "-var", "runnable_time_limit_seconds=60")
    output = " ".join((result.stdout + result.stderr).split())
    assert "compute_type must be one of EC2, SPOT, FARGATE, FARGATE_SPOT." in output
    assert "name_prefix must be" in output
    assert "merge.ephemeral_storage must be null or a whole number of GiB from 21 to 200." in output
    assert "process_fov.memory must be a whole number of MiB, at least 512." in output
    assert "runnable_time_limit_seconds must be null or a whole number of seconds from 600 to 86400." in output


def test_invalid_names_paths_and_network_inputs_are_rejected(initialised):
    """Names are checked for AWS's limits at plan time (here: before any provider call)."""
    result = _console(initialised, "-var", "iam_role_path=starfish", "-var", "iam_name_prefix=" + "x" * 55,
                      "-var", "iam_permissions_boundary=arn:aws:iam::123:role/x",
                      "-var", "ssm_parameter_name=/aws/starfish", "-var", 'egress_prefix_list_ids=["sg-1"]')
    output = " ".join((result.stdout + result.stderr).split())
    assert "iam_role_path must start and end with /" in output
    assert "iam_name_prefix must be null or 1 to 54 characters" in output
    assert "iam_permissions_boundary must be null or an IAM policy ARN" in output
    assert "ssm_parameter_name must be null or an SSM parameter name" in output
    assert "egress_prefix_list_ids must be prefix list ids" in output
    good = _console(initialised, "-var", "iam_role_path=/teams/imaging/", "-var", "iam_name_prefix=sfb-eu",
                    "-var", "iam_permissions_boundary=arn:aws:iam::123456789012:policy/boundary",
                    "-var", "ssm_parameter_name=/teams/imaging/starfish", "-var", "use_default_vpc=true")
    assert good.returncode == 0, good.stdout + good.stderr


def test_worker_objects_take_optional_fields(initialised):
    """One typed object per worker: the fields left out take their defaults."""
    work, env = initialised
    result = subprocess.run(
        ["terraform", "console", "-no-color", "-var", "process_fov={vcpus = 2}"],
        cwd=work, env=env, input="jsonencode([var.process_fov, var.merge])\n",
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    process_fov, merge = json.loads(json.loads(result.stdout.strip()))
    assert process_fov == {"vcpus": 2, "memory": 4096, "timeout_seconds": 3600, "image": None}
    assert merge == {"vcpus": 2, "memory": 4096, "timeout_seconds": 7200, "image": None,
                     "ephemeral_storage": None}


def _blocks(kind: str) -> dict[str, str]:
    """name -> body of each top-level `kind "name" {` block of the root module."""
    blocks = {}
    for tf in REPO_ROOT.glob("*.tf"):
        text = tf.read_text()
        for match in re.finditer(rf'^{kind} "([^"]+)" \{{\n(.*?)^\}}', text, re.M | re.S):
            blocks[match.group(1)] = match.group(2)
    return blocks


def test_every_variable_has_description_and_type():
    variables = _blocks("variable")
    assert len(variables) >= 20
    for name, body in variables.items():
        assert re.search(r"^  description\s*=", body, re.M), f"variable {name} has no description"
        assert re.search(r"^  type\s*=", body, re.M), f"variable {name} has no type"


def test_every_output_has_description_and_contract_outputs_exist():
    outputs = _blocks("output")
    assert CONTRACT_OUTPUTS <= set(outputs), CONTRACT_OUTPUTS - set(outputs)
    for name, body in outputs.items():
        assert re.search(r"^  description\s*=", body, re.M), f"output {name} has no description"


def test_provider_range_matches_the_arguments_used():
    """The compute environments are named with compute_environment_name_prefix, 5.x's spelling
    (6.0 renamed it name_prefix): the module and every example refuse a provider of 6.0 or later."""
    text = "\n".join(tf.read_text() for tf in REPO_ROOT.glob("*.tf"))
    assert re.search(r"^\s*compute_environment_name_prefix\s*=", text, re.M)
    for versions in [REPO_ROOT / "versions.tf", *(REPO_ROOT / "examples" / n / "versions.tf" for n in ALL_EXAMPLES)]:
        assert re.search(r'version\s*=\s*">= 5\.100, < 6\.0"', versions.read_text()), versions
    # resource-level `region` (6.x) would appear as an argument in a resource body
    for name, body in _blocks("resource").items():
        assert not re.search(r"^  region\s*=", body, re.M), f"resource {name} sets region"


def test_docs_list_every_variable_and_output():
    """A row of docs/terraform.md's Inputs/Outputs tables each, not a mention in prose."""
    doc = (REPO_ROOT / "docs" / "terraform.md").read_text()
    for name in list(_blocks("variable")) + list(_blocks("output")):
        assert re.search(rf"^\| `{re.escape(name)}` \|", doc, re.M), \
            f"docs/terraform.md (Terraform inputs and outputs) has no table row for {name}"


def _checkov() -> Path:
    return Path(os.environ.get("CHECKOV", REPO_ROOT / ".venv-checkov" / "bin" / "checkov"))


def test_checkov(tmp_path):
    checkov = _checkov()
    if not (checkov.is_file() and os.access(checkov, os.X_OK)):
        pytest.skip(
            f"checkov not found at {checkov} (set CHECKOV, or: python3 -m venv .venv-checkov && "
            ".venv-checkov/bin/pip install -r tests/terraform/requirements-checkov.txt)"
        )
    work = copy_module(tmp_path / "module")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(CKV_PARSE_ERROR_FAIL="true", BC_SKIP_MAPPING="TRUE", LOG_LEVEL="WARNING")
    result = subprocess.run(
        [
            str(checkov),
            "-d",
            str(work),
            "--framework",
            "terraform",
            "--quiet",
            "--compact",
            "--skip-download",
            "--output",
            "cli",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"checkov found failed checks:\n{output}"
    assert re.search(r"Passed checks: [1-9]\d*, Failed checks: 0", output), output


def test_every_checkov_skip_has_a_reason():
    for tf in sorted(REPO_ROOT.glob("*.tf")):
        for line in tf.read_text().splitlines():
            if "checkov:skip=" in line:
                assert re.search(r"checkov:skip=CKV2?_[A-Z0-9_]+:\S.{10,}", line), (
                    f"{tf.name}: checkov skip without a reason: {line.strip()}"
                )


def _launcher_reads() -> set[str]:
    """Every output name the launcher reads: the required ones and each ``extra.get("name")``."""
    names = set(REQUIRED)
    for path in (REPO_ROOT / "workers" / "src" / "starfish_batch" / "launcher").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                    and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "extra"
                    and node.args and isinstance(node.args[0], ast.Constant)):
                names.add(node.args[0].value)
    return names


def test_launcher_config_holds_every_output_the_launcher_reads():
    """A run configured by --deployment (the SSM parameter) or by a stack that re-exports only
    launcher_config sees only that object: whatever the launcher reads must be in it."""
    source = (REPO_ROOT / "launcher_config.tf").read_text()
    body = source[source.index("launcher_config = {"):]
    body = body[:body.index("\n  }\n")]
    keys = set(re.findall(r"^\s+([a-z_]+)\s+=", body, flags=re.M))
    outputs = set(re.findall(r'^output "([a-z_]+)"', (REPO_ROOT / "outputs.tf").read_text(), flags=re.M))
    read = _launcher_reads()
    assert "results_caller_prefix" in read and "compute_type" in read  # the walk finds the optional ones
    assert sorted(read - keys) == []
    assert sorted(read - outputs) == []  # and each is a separate output too, for stacks that use them
