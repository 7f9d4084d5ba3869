"""Upgrading a deployment: this module planned over the state of the module as it was before
(read from git), on moto. Nothing may be replaced or destroyed: each resource is kept, at its
old address or moved to a new one by ``migrations.tf``, unchanged or updated in place.

One apply (the session's moto server, 127.0.0.1) of a stack holding two deployments of the old
module: ``spot`` (SPOT with its On-Demand fallback: two compute environments) and ``fargate``
(FARGATE_SPOT with ``on_demand_fallback = false``: one). The stack then calls this module
instead (``terraform init`` again), and its plan is read as JSON.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.terraform import (
    MOTO_QUIRKS_OVERRIDE,
    copy_module,
    hcl,
    module_at_commit,
    moto_provider,
    run_terraform,
    terraform_env,
    terraform_init,
)
from tests.support.terraform import apply as tf_apply

pytestmark = pytest.mark.slow  # Terraform applied to moto: make test-slow

# The module before issue 28: the fallback compute environment had a resource block of its own
# (count), storage.tf held the bucket, the repositories and the log group.
BEFORE = "75012c7a50e8c45a5d69c95323dff4c49dc192d5"
DEPLOYMENTS: dict[str, dict[str, Any]] = {
    "spot": {"name_prefix": "sfb-up-spot", "compute_type": "SPOT"},
    "fargate": {"name_prefix": "sfb-up-fargate", "compute_type": "FARGATE_SPOT", "on_demand_fallback": False},
}
# address in this module <- address before (the compute environments: one resource, for_each)
MOVES = {
    'module.spot.aws_batch_compute_environment.this["primary"]': "module.spot.aws_batch_compute_environment.this",
    'module.spot.aws_batch_compute_environment.this["on_demand"]':
        "module.spot.aws_batch_compute_environment.on_demand[0]",
    'module.fargate.aws_batch_compute_environment.this["primary"]':
        "module.fargate.aws_batch_compute_environment.this",
}
KEPT = ({"no-op"}, {"update"}, {"read"})  # actions that keep a resource (a data source is read)


def _write_stack(caller: Path, module: Path, url: str, common: dict[str, Any]) -> None:
    """A team's stack on moto calling ``module`` once per deployment and exporting each call
    whole (every output of the module)."""
    (module / "zz_moto_override.tf").write_text(MOTO_QUIRKS_OVERRIDE)
    source = os.path.relpath(module, caller)
    blocks = []
    for name, inputs in DEPLOYMENTS.items():
        args = "\n".join(f"  {k} = {hcl(v)}" for k, v in {**common, **inputs}.items())
        blocks.append(f'module "{name}" {{\n  source = "{source}"\n\n{args}\n}}\n\n'
                      f'output "{name}" {{\n  value = module.{name}\n}}\n')
    (caller / "main.tf").write_text(
        "# Written by the tests only: two deployments in one stack.\n"
        + moto_provider(url) + "\n" + "\n".join(blocks))


def _log(result) -> str:
    return f"rc={result.returncode}\n{result.stdout[-5000:]}\n{result.stderr[-5000:]}"


@pytest.fixture(scope="module")
def upgrade(terraform_available, moto_server, tmp_path_factory) -> dict[str, Any]:
    """Apply the old module; plan this one over its state (the plan as JSON)."""
    base = tmp_path_factory.mktemp("tf-upgrade")
    old = module_at_commit(BEFORE, base / "before")
    if old is None:
        pytest.skip(f"commit {BEFORE[:7]} (the module before its moved blocks) is not in this clone "
                    "(a shallow clone?): the upgrade test skipped")
    moto_server.reset()
    service_role = moto_server.client("iam").create_role(
        RoleName="moto-batch-service-role",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "batch.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
    )["Role"]["Arn"]
    # What moto needs (a service role that exists, the default VPC said explicitly).
    common = {"use_default_vpc": True, "batch_service_role_arn": service_role, "ecr_force_delete": True,
              "results_bucket_force_destroy": True}
    caller = base / "caller"
    caller.mkdir()
    env = terraform_env(caller)
    seconds: dict[str, float] = {}
    started = time.monotonic()

    def lap(step: str) -> None:  # how long each step took (pytest -s prints it)
        nonlocal started
        seconds[step] = round(time.monotonic() - started, 1)
        started = time.monotonic()

    _write_stack(caller, old, moto_server.url, common)
    terraform_init(caller, env)
    lap("init")
    apply = tf_apply(caller, env)
    (base / "apply.log").write_text(apply.stdout + apply.stderr)
    assert apply.returncode == 0, f"apply of the module before (commit {BEFORE[:7]}) failed:\n{_log(apply)}"
    lap("apply before")

    _write_stack(caller, copy_module(base / "module"), moto_server.url, common)
    terraform_init(caller, env)  # the new source
    lap("init again")
    # No refresh: the state is what the apply has just read back (a second read of every resource
    # took 16 s more on a loaded machine); moves and replacements come from config and state.
    plan = run_terraform(["plan", "-input=false", "-refresh=false", "-out=upgrade.tfplan"], caller, env)
    assert plan.returncode == 0, f"plan of this module over the old state failed:\n{_log(plan)}"
    shown = run_terraform(["show", "-json", "upgrade.tfplan"], caller, env)
    assert shown.returncode == 0, shown.stderr
    lap("plan")
    print(f"\nterraform upgrade on moto: {seconds}")
    return {"plan": plan, "json": json.loads(shown.stdout)}


def test_upgrade_replaces_and_destroys_nothing(upgrade):
    changes = upgrade["json"]["resource_changes"]
    assert len(changes) >= 40, [c["address"] for c in changes]
    changed = {c["address"]: c["change"]["actions"] for c in changes if set(c["change"]["actions"]) not in KEPT}
    assert not changed, f"the upgrade would create, replace or destroy: {changed}\n{upgrade['plan'].stdout[-4000:]}"
    assert "Plan: 0 to add" in upgrade["plan"].stdout or "No changes." in upgrade["plan"].stdout


def test_compute_environments_are_moved_not_recreated(upgrade):
    """Each environment of the old state (both of the Spot deployment, the one of the Fargate
    Spot deployment without a fallback) is the same environment at its new address."""
    moved = {c["address"]: (c.get("previous_address"), c["change"]["actions"])
             for c in upgrade["json"]["resource_changes"] if c["type"] == "aws_batch_compute_environment"}
    assert moved == {new: (old, ["no-op"]) for new, old in MOVES.items()}


# Keys this version adds to launcher_config (see CHANGELOG.md): new, never a changed value.
ADDED_TO_LAUNCHER_CONFIG = {"results_caller_prefix"}


def test_outputs_are_unchanged(upgrade):
    """Every output of both deployments (launcher_config, compute_environment_arn(s), ...) keeps
    its value: the launcher reads them. launcher_config may only gain the keys this version adds."""
    outputs = upgrade["json"]["output_changes"]
    assert set(outputs) == set(DEPLOYMENTS)
    for name, change in outputs.items():
        before, after = change["before"], change["after"]
        assert set(after) == set(before), name
        for key, value in before.items():
            if key == "launcher_config":
                assert {k: after[key].get(k) for k in value} == value, (name, key)
                assert set(after[key]) - set(value) <= ADDED_TO_LAUNCHER_CONFIG, (name, key)
            else:
                assert after[key] == value, (name, key)
        assert change["after"]["compute_environment_arn"].startswith("arn:aws:batch:")
    assert len(outputs["spot"]["after"]["compute_environment_arns"]) == 2
    assert len(outputs["fargate"]["after"]["compute_environment_arns"]) == 1
