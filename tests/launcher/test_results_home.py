"""The launcher finds the scientist's own folder of the results bucket itself (issue 30): with the
module's per-caller scope, the default results URL is ``<results_caller_prefix><aws:userid>``,
the caller's UserId from STS (moto here), and the launcher says where the runs live."""

from __future__ import annotations

import boto3

from starfish_batch.launcher.executors.batch import BatchExecutor
from starfish_batch.launcher.results_home import default_results_url
from starfish_batch.launcher.tf_outputs import REQUIRED, parse_outputs


def _outputs(**extra):
    values = {name: f"arn:aws:batch:us-east-1:123456789012:{name}" for name in REQUIRED}
    values |= {"region": "us-east-1", "results_bucket": "lab-results", **extra}
    return parse_outputs(values, "test outputs")


def test_the_default_results_url_is_the_callers_own_folder(capsys):
    from moto import mock_aws  # lazy: moto ~0.6 s

    with mock_aws():
        userid = boto3.client("sts", region_name="us-east-1").get_caller_identity()["UserId"]
        url = default_results_url(BatchExecutor(_outputs(results_caller_prefix="users/")))
    assert url == f"s3://lab-results/users/{userid}"
    assert f"results: s3://lab-results/users/{userid}/" in capsys.readouterr().err


def test_without_a_per_caller_scope_the_default_is_the_bucket(capsys):
    assert default_results_url(BatchExecutor(_outputs(results_caller_prefix=None))) == "s3://lab-results"
    assert default_results_url(BatchExecutor(_outputs())) == "s3://lab-results"
    assert capsys.readouterr().err == ""
