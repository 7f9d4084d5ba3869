"""Packed children end to end: the Terraform module applied to moto, moto's Batch running the
process-fov image in podman, the launcher with ``--fovs-per-job 3`` (6 FOVs in 2 children).

The ``e2e`` marker, like tests/e2e/test_e2e_batch_containers.py (whose helpers this reuses);
`make e2e` (scripts/ci/e2e.sh) runs it with the images it builds.

1. run e2e-packed: 6 FOVs in 2 children of 3; each child's log tells its 3 FOVs; the merged
   table is identical to the local executor's (one process per FOV) on the same experiment;
2. run e2e-killed: a recipe that kills its own process (SIGKILL, as the OOM killer or a lost
   host would) on the second FOV of the first child, once: the child fails with its first FOV
   committed; the launcher names the FOVs of the slice left undone; `--resume` then processes
   those alone (the first FOV's table and record are not rewritten) and the merged table is
   again identical to the local one.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.containers import PodmanService
from tests.support.e2e_stack import (
    DATA_BUCKET,
    MOTO_LOG_GROUP,
    NEEDS_TERRAFORM,
    RESULTS_BUCKET,
    RESULTS_URL,
    Timings,
    apply_module,
    finish,
    launcher_env,
    log_lines,
    open_table,
)
from tests.support.moto import MotoServer
from tests.support.workflow import ISS_RECIPE, LAUNCHER, demo_experiment_in_s3

pytestmark = NEEDS_TERRAFORM

FOVS = ["A1", "A2", "A3", "B1", "B2", "B3"]
PER_JOB = 3
PACKED_RUN, KILLED_RUN = "e2e-packed", "e2e-killed"
KILL_FOV = "A2"  # the second FOV of the first child
TIMEOUT_S = 900.0

# Appended to the ISS recipe: the first time FOV KILL_FOV is processed (no marker object yet in
# the results bucket), the worker process is killed outright; the next time it runs normally.
KILLING_WRAPPER = f'''

_iss_process_fov = process_fov


def process_fov(fov, codebook):
    import os
    import signal

    import boto3

    if fov.name == {KILL_FOV!r}:
        s3 = boto3.client("s3")
        marker = dict(Bucket={RESULTS_BUCKET!r}, Key="e2e-killed-once")
        try:
            s3.head_object(**marker)
        except Exception:
            s3.put_object(Body=b"", **marker)
            os.kill(os.getpid(), signal.SIGKILL)
    return _iss_process_fov(fov, codebook)
'''


def _run(args: list[str], env: dict, cwd) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(LAUNCHER), *args, "--quiet"], env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _batch(tf_outputs) -> list[str]:
    return ["--executor", "batch", "--tf-outputs", str(tf_outputs), "--results-url", RESULTS_URL]


@pytest.mark.e2e
def test_packed_children_and_a_child_killed_mid_slice(e2e_state, tmp_path):  # noqa: PLR0915
    import xarray as xr  # lazy: xarray ~1.7 s

    t = Timings()
    with t.phase("podman API service + moto server (Batch in docker mode)"):
        podman = PodmanService(e2e_state).start()
        moto = MotoServer(e2e_state, docker_host=podman.docker_host, pid_file=e2e_state / "moto.pid").start()
    try:
        home = tmp_path / "home"
        (home / "mpl").mkdir(parents=True)
        env = launcher_env(moto, home)
        s3, batch = moto.client("s3"), moto.client("batch")
        experiment = demo_experiment_in_s3(s3, tmp_path / "experiment", FOVS, DATA_BUCKET, RESULTS_BUCKET)
        local_env = {k: v for k, v in env.items() if k != "AWS_ENDPOINT_URL"}
        local = _run(["--experiment-url", str(experiment), "--recipe", str(ISS_RECIPE), "--results-url",
                      str(tmp_path / "local"), "--run-id", "local", "--workers", "1"], local_env, tmp_path)
        with t.phase("terraform init + apply against moto"):
            outputs = {k: v["value"] for k, v in apply_module(moto, tmp_path).items()}
        tf_outputs = tmp_path / "tf-outputs.json"
        saved = outputs | {"log_group_name": MOTO_LOG_GROUP}
        if isinstance(saved.get("launcher_config"), dict):  # the one object the launcher reads first
            saved["launcher_config"] = saved["launcher_config"] | {"log_group_name": MOTO_LOG_GROUP}
        tf_outputs.write_text(json.dumps({k: {"value": v} for k, v in saved.items()}))
        source = ["--experiment-url", f"s3://{DATA_BUCKET}/exp/experiment.json"]

        with t.phase("packed run: 6 FOVs in 2 children of 3"):
            code, out, err = finish(_run([*_batch(tf_outputs), *source, "--recipe", str(ISS_RECIPE),
                                           "--run-id", PACKED_RUN, "--fovs-per-job", str(PER_JOB)], env, tmp_path),
                                     "packed launcher", TIMEOUT_S)
            assert code == 0, err[-6000:]
            assert f"{len(FOVS)} FOVs in 2 children of {PER_JOB}" in err
            jobs = json.loads(s3.get_object(Bucket=RESULTS_BUCKET, Key=f"runs/{PACKED_RUN}/jobs.json")["Body"].read())
            assert jobs["fovs_per_job"] == PER_JOB and [j["size"] for j in jobs["process_jobs"]] == [2]
            parent = jobs["process_jobs"][0]["job_id"]
            for child in batch.describe_jobs(jobs=[f"{parent}:0", f"{parent}:1"])["jobs"]:
                assert child["status"] == "SUCCEEDED"
                lines = log_lines(moto, child["container"]["logStreamName"])
                assert sum(" features in " in line for line in lines) == PER_JOB, lines

        local_rc, _, local_err = finish(local, "local executor", TIMEOUT_S)
        assert local_rc == 0, local_err[-4000:]
        reference = open_table(tmp_path / "local" / "local" / "merged_decoded_fovs.nc")

        def merged(run_id: str):
            path = tmp_path / f"{run_id}.nc"
            s3.download_file(RESULTS_BUCKET, f"runs/{run_id}/merged_decoded_fovs.nc", str(path))
            return open_table(path)

        xr.testing.assert_identical(merged(PACKED_RUN), reference)

        killing = tmp_path / "killing_recipe.py"
        killing.write_text(ISS_RECIPE.read_text() + KILLING_WRAPPER)
        with t.phase("a child killed mid-slice, then --resume"):
            code, out, err = finish(_run([*_batch(tf_outputs), *source, "--recipe", str(killing),
                                           "--run-id", KILLED_RUN, "--fovs-per-job", str(PER_JOB)], env, tmp_path),
                                     "killed launcher", TIMEOUT_S)
            if code == 0:
                # moto retried the killed child (it does not apply the job definition's EXIT rule,
                # as AWS does for a killed container): the retry must have skipped A1, committed
                # before the kill, and done A2 and A3 only.
                parent = json.loads(s3.get_object(Bucket=RESULTS_BUCKET,
                                                  Key=f"runs/{KILLED_RUN}/jobs.json")["Body"].read())
                parent = parent["process_jobs"][0]["job_id"]
                child = batch.describe_jobs(jobs=[f"{parent}:0"])["jobs"][0]
                assert len(child.get("attempts", [])) >= 2 or child["status"] == "SUCCEEDED", child
                a1 = s3.head_object(Bucket=RESULTS_BUCKET, Key=f"runs/{KILLED_RUN}/fovs/A1.json")
                marker = s3.head_object(Bucket=RESULTS_BUCKET, Key="e2e-killed-once")
                assert a1["LastModified"] <= marker["LastModified"]  # A1 was not written again
                xr.testing.assert_identical(merged(KILLED_RUN), reference)
            else:
                # AWS's way: the child ends; the launcher names the FOVs it left undone
                assert f"FOV {KILL_FOV} (index 1) failed" in err, err[-6000:]
                assert "2 of 6 FOVs failed (A2, A3)" in err, err[-6000:]
                first = s3.get_object(Bucket=RESULTS_BUCKET, Key=f"runs/{KILLED_RUN}/fovs/A1.json")["Body"].read()
                code, out, err = finish(_run([*_batch(tf_outputs), "--resume", KILLED_RUN], env, tmp_path),
                                         "resume launcher", TIMEOUT_S)
                assert code == 0, err[-6000:]
                assert "2 of 6 FOVs left to process" in err
                again = s3.get_object(Bucket=RESULTS_BUCKET, Key=f"runs/{KILLED_RUN}/fovs/A1.json")["Body"].read()
                assert again == first  # the finished FOV was not recomputed
                xr.testing.assert_identical(merged(KILLED_RUN), reference)
    finally:
        with t.phase("stop moto server and podman service"):
            moto.stop()
            podman.stop()
