"""End to end on an emulated AWS: the Terraform module applied to a moto server, the launcher
reading its real `terraform output -json`, then every submitted job executed as AWS Batch
would start it (the container command and environment exactly as moto describes the job),
in dependency order. The merged result in (moto's) S3 must equal what the local executor
writes for the same experiment.

moto runs Batch without Docker here: every job is marked SUCCEEDED at submission, and nothing
runs; this test is the container runtime. Everything talks to 127.0.0.1 with dummy credentials.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import xarray as xr

from starfish_batch.launcher import runs
from starfish_batch.launcher.executors.local import LocalExecutor
from tests.support import PLUGIN_DIR, REPO_ROOT
from tests.support.moto import MotoServer
from tests.support.terraform import apply as tf_apply
from tests.support.terraform import point_at_moto
from tests.support.workflow import ISS_RECIPE, LAUNCHER, demo_experiment_in_s3

REGION = "us-east-1"
DATA_BUCKET = "sfb-e2e-data"
RESULTS_BUCKET = "sfb-e2e-results"
RUN_ID = "e2e-1"
FOVS = ["A1", "b_2"]
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
VENV_BIN = Path(sys.executable).parent

pytestmark = [
    pytest.mark.slow,  # Terraform applied to moto: make test-slow
    pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed"),
    pytest.mark.skipif(not PLUGIN_DIR.is_dir(),
                       reason=f"no Terraform provider mirror at {PLUGIN_DIR}"),
    pytest.mark.skipif(MotoServer.command() is None,
                       reason="moto_server is not installed (pip install 'moto[server]')"),
]


def _client(service: str, endpoint: str):
    return boto3.client(service, region_name=REGION, endpoint_url=endpoint,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def _base_env(endpoint: str, home: Path) -> dict[str, str]:
    """What every process we start gets: loopback endpoint, dummy credentials, nothing else."""
    return {
        "PATH": f"{VENV_BIN}{os.pathsep}/usr/local/bin{os.pathsep}/usr/bin{os.pathsep}/bin",
        "HOME": str(home),
        "MPLCONFIGDIR": str(home / "mpl"),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_DEFAULT_REGION": REGION,
        **CREDENTIALS,
    }


def _apply_module(tf_dir: Path, endpoint: str, env: dict[str, str]) -> None:
    """Copy the module, point its provider at moto (a test-only override file), apply it."""
    tf_dir.mkdir()
    for path in REPO_ROOT.glob("*.tf"):
        if not path.name.endswith("_override.tf"):
            shutil.copy(path, tf_dir / path.name)
    point_at_moto(tf_dir, endpoint)  # the module has no provider block: a root copy gets one
    run = dict(cwd=tf_dir, env=env, capture_output=True, text=True, timeout=600)
    init = subprocess.run(["terraform", "init", "-input=false", "-no-color",
                           f"-plugin-dir={PLUGIN_DIR}"], **run)
    assert init.returncode == 0, init.stdout[-2000:] + init.stderr[-3000:]
    apply = tf_apply(tf_dir, env, [
        # moto needs a service role that exists; AWS would use its service-linked role.
        "-var", "create_batch_service_linked_role=true", "-var", "use_default_vpc=true",
        # an existing bucket: skips the lifecycle rules, which the provider polls for a minute
        "-var", "create_results_bucket=false", "-var", f"results_bucket_name={RESULTS_BUCKET}",
        "-var", f'experiment_s3_locations=["s3://{DATA_BUCKET}"]',
    ], timeout=600)
    assert apply.returncode == 0, apply.stdout[-3000:] + apply.stderr[-3000:]


def _execute(job: dict, env: dict[str, str], job_id: str, cwd: Path) -> None:
    """Start a job's container command with its described environment, as Batch would."""
    described = {e["name"]: e["value"] for e in job["container"]["environment"]}
    described["AWS_BATCH_JOB_ID"] = job_id  # moto lists it twice for children; this is Batch's
    command = job["container"]["command"]
    proc = subprocess.run(command, env={**env, **described}, cwd=cwd, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, f"{command} {job_id}: {proc.stdout[-2000:]}{proc.stderr[-4000:]}"


def _merge_available() -> bool:
    return (VENV_BIN / "merge-batch-job").exists()


def _open(path: Path) -> xr.DataArray:
    from starfish import DecodedIntensityTable  # lazy: import starfish takes seconds

    table = DecodedIntensityTable.open_netcdf(str(path))
    return xr.DataArray(table).load()


def test_terraform_outputs_to_merged_result(moto_server, tmp_path):
    moto_server.reset()
    endpoint = moto_server.url
    home = tmp_path / "home"
    (home / "mpl").mkdir(parents=True)
    env = _base_env(endpoint, home)
    env["TF_DATA_DIR"] = str(tmp_path / "tf-data")
    s3 = _client("s3", endpoint)
    experiment = demo_experiment_in_s3(s3, tmp_path / "experiment", FOVS, DATA_BUCKET, RESULTS_BUCKET)

    tf_dir = tmp_path / "module"
    _apply_module(tf_dir, endpoint, env)

    # The launcher, as a scientist runs it, with the real `terraform output -json`.
    launched = subprocess.run([
        sys.executable, str(LAUNCHER), "--executor", "batch", "--tf-dir", str(tf_dir),
        "--experiment-url", f"s3://{DATA_BUCKET}/exp/experiment.json",
        "--recipe", str(ISS_RECIPE), "--results-url", f"s3://{RESULTS_BUCKET}/runs",
        "--run-id", RUN_ID, "--no-wait", "--quiet",
    ], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert launched.returncode == 0, launched.stdout + launched.stderr[-4000:]
    lines = dict(line.split(" ", 1) for line in launched.stdout.splitlines())
    assert lines["run_id"] == RUN_ID
    process_id, merge_id = lines["process-fov"], lines["merge-batch-job"]

    outputs = json.loads(subprocess.run(["terraform", "output", "-json"], cwd=tf_dir, env=env,
                                        capture_output=True, text=True, check=True).stdout)
    batch = _client("batch", endpoint)
    process, merge = batch.describe_jobs(jobs=[process_id, merge_id])["jobs"]
    assert process["jobDefinition"] == outputs["process_fov_job_definition_arn"]["value"]
    assert merge["jobDefinition"] == outputs["merge_job_definition_arn"]["value"]
    assert process["jobQueue"] == merge["jobQueue"] == outputs["job_queue_arn"]["value"]
    assert process["arrayProperties"]["size"] == len(FOVS)
    assert merge["dependsOn"] == [{"jobId": process_id}]
    assert process["container"]["command"] == ["process-fov"]
    assert merge["container"]["command"] == ["merge-batch-job"]

    # Batch's part: each array child, then (its dependency done) the merge.
    children = batch.describe_jobs(jobs=[f"{process_id}:{i}" for i in range(len(FOVS))])["jobs"]
    for i, child in enumerate(sorted(children, key=lambda j: int(j["jobId"].rsplit(":", 1)[1]))):
        assert child["jobId"] == f"{process_id}:{i}"
        _execute(child, env, child["jobId"], tmp_path)
    names = {o["Key"] for o in s3.list_objects_v2(Bucket=RESULTS_BUCKET,
                                                   Prefix=f"runs/{RUN_ID}/")["Contents"]}
    for fov in FOVS:
        assert {f"runs/{RUN_ID}/fovs/{fov}.nc", f"runs/{RUN_ID}/fovs/{fov}.json"} <= names

    # The same experiment on the local executor.
    local_results = tmp_path / "local"
    local_env = {k: v for k, v in env.items() if k != "AWS_ENDPOINT_URL"}
    merge_ready = _merge_available()
    if merge_ready:
        local = subprocess.run([
            sys.executable, str(LAUNCHER), "--experiment-url", str(experiment),
            "--recipe", str(ISS_RECIPE), "--results-url", str(local_results),
            "--run-id", RUN_ID, "--workers", "1", "--quiet",
        ], env=local_env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert local.returncode == 0, local.stdout + local.stderr[-4000:]
    else:
        manifest, manifest_url = runs.new_run(str(experiment), str(ISS_RECIPE),
                                              str(local_results), run_id=RUN_ID)
        outcome = LocalExecutor(workers=1, progress=False).process(manifest, manifest_url)
        assert not outcome.failed, outcome.failed

    for fov in FOVS:  # each FOV's table, processed in a "container" and locally
        s3.download_file(RESULTS_BUCKET, f"runs/{RUN_ID}/fovs/{fov}.nc", str(tmp_path / "fov.nc"))
        xr.testing.assert_equal(_open(tmp_path / "fov.nc"),
                                _open(local_results / RUN_ID / "fovs" / f"{fov}.nc"))

    if not merge_ready:
        pytest.skip("merge-batch-job is not installed yet: checked up to the process-fov outputs")
    _execute(merge, env, merge_id, tmp_path)
    merged = tmp_path / "merged_decoded_fovs.nc"
    s3.download_file(RESULTS_BUCKET, f"runs/{RUN_ID}/merged_decoded_fovs.nc", str(merged))
    xr.testing.assert_equal(_open(merged), _open(local_results / RUN_ID / "merged_decoded_fovs.nc"))

    # `status` from "another machine": only the run id, the results URL and the outputs.
    status = subprocess.run([
        sys.executable, str(LAUNCHER), "status", RUN_ID, "--executor", "batch",
        "--tf-dir", str(tf_dir), "--results-url", f"s3://{RESULTS_BUCKET}/runs",
    ], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert status.returncode == 0, status.stdout + status.stderr[-3000:]
    state = json.loads(status.stdout)
    assert state["merged"] is True and state["fovs_done"] == len(FOVS)
