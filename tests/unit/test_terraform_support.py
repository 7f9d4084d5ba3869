"""The support layer's apply against moto: once more only after a create the provider retried."""

from __future__ import annotations

import os

import pytest

from tests.support import terraform as tfh

# terraform as seen from the support layer: each call appends its arguments to a log and fails
# with the given error while the countdown file says so.
FAKE = """#!/bin/bash
echo "$*" >> "$(dirname "$0")/calls"
left=$(cat "$(dirname "$0")/fail")
if (( left > 0 )); then
    echo $((left - 1)) > "$(dirname "$0")/fail"
    echo "Error: $(cat "$(dirname "$0")/error")" >&2
    exit 1
fi
echo "Apply complete!"
"""


def _terraform(tmp_path, error: str, failures: int) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "terraform").write_text(FAKE)
    (bin_dir / "terraform").chmod(0o755)
    (bin_dir / "error").write_text(error)
    (bin_dir / "fail").write_text(str(failures))
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


RETRIED = ("adding IAM Role (x) to IAM Instance Profile (x): operation error IAM: AddRoleToInstanceProfile, "
           "https response error StatusCode: 409, LimitExceeded: Cannot exceed quota for "
           "InstanceSessionsPerInstanceProfile: 1")


@pytest.mark.parametrize("error", [RETRIED, "creating Batch Job Queue (q): ClientException: q already exists"])
def test_a_create_the_provider_retried_is_applied_once_more(tmp_path, error):
    env = _terraform(tmp_path, error, failures=1)
    done = tfh.apply(tmp_path, env, ["-var", "a=1"], saved_plan=None)
    assert done.returncode == 0 and "Apply complete!" in done.stdout
    assert done.first_attempt.returncode == 1
    calls = (tmp_path / "bin" / "calls").read_text().splitlines()
    assert calls == ["apply -auto-approve -input=false -var a=1 -no-color"] * 2


def test_any_other_failure_is_returned_as_it_came(tmp_path):
    env = _terraform(tmp_path, "creating IAM Role (r): AccessDenied", failures=1)
    done = tfh.apply(tmp_path, env, saved_plan="first.tfplan")
    assert done.returncode == 1 and "AccessDenied" in done.stderr
    assert (tmp_path / "bin" / "calls").read_text().splitlines() == ["apply -input=false first.tfplan -no-color"]


def test_a_second_failure_is_not_retried_again(tmp_path):
    env = _terraform(tmp_path, RETRIED, failures=2)
    assert tfh.apply(tmp_path, env).returncode == 1
    assert len((tmp_path / "bin" / "calls").read_text().splitlines()) == 2
