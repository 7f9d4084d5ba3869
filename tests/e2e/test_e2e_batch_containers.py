"""The whole system on this machine: Terraform module -> moto's Batch -> worker images in podman.

The ``e2e`` marker (root, podman, terraform + the provider mirror); `make e2e` (scripts/ci/e2e.sh)
installs podman, builds the base and worker images, runs this module and tears it all down.

What happens, all on 127.0.0.1 with dummy credentials:

1. podman's Docker API service and a moto server whose Batch runs containers through it
   (tests/support/containers.py);
2. a 3-FOV demo experiment is written and uploaded to moto's S3; the local executor runs it
   meanwhile (the reference result);
3. the Terraform module is applied against moto, its job definitions pointing at the local
   image tags, with AWS_ENDPOINT_URL and dummy credentials in `job_environment` (the
   containers share the host network, so they reach moto);
4. the launcher, `--executor batch` in follow mode, runs the ISS recipe (run e2e-ok) and a
   recipe that raises on one FOV (run e2e-fail), concurrently, against the same stack; an
   observer records every child's and the merge's statuses while they run;
5. checks: each child went RUNNING then SUCCEEDED in a container (and logged), the merge
   started after the last child stopped, the merged table in moto's S3 is identical to the
   local executor's; in e2e-fail the failing FOV is FAILED, the launcher exits non-zero and
   its stderr names the FOV and shows its log lines, and the merge never ran (then the
   launcher's `cancel` ends it).

Phase timings go to stderr (run pytest with -s) and to $E2E_TIMINGS if set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

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

FOVS = ["A1", "A2", "B1"]
FAIL_FOV = "A2"
OK_RUN, FAIL_RUN = "e2e-ok", "e2e-fail"
FAIL_MESSAGE = f"e2e: this recipe fails on FOV {FAIL_FOV} on purpose"
LAUNCHER_TIMEOUT_S = float(os.environ.get("E2E_LAUNCHER_TIMEOUT", "900"))

# Appended to the ISS recipe: the recipe file is uploaded on its own, so it cannot import
# anything from this repo; the FOV that fails is named in it.
FAILING_WRAPPER = f'''

_iss_process_fov = process_fov


def process_fov(fov, codebook):
    if fov.name == {FAIL_FOV!r}:
        raise RuntimeError({FAIL_MESSAGE!r})
    return _iss_process_fov(fov, codebook)
'''

pytestmark = NEEDS_TERRAFORM


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def _launch(run_id: str, recipe: Path, tf_outputs: Path, env: dict, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable, str(LAUNCHER), "--executor", "batch", "--tf-outputs", str(tf_outputs),
            "--experiment-url", f"s3://{DATA_BUCKET}/exp/experiment.json",
            "--recipe", str(recipe), "--results-url", RESULTS_URL, "--run-id", run_id, "--quiet",
        ],
        env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )


class Observer(threading.Thread):
    """Polls a run's children and merge (never the array parent: describing it is what moves
    moto's parent to SUCCEEDED, and that must stay the launcher's doing) every 0.5 s, and
    records each job's sequence of statuses."""

    def __init__(self, moto: MotoServer, run_id: str, proc: subprocess.Popen):
        super().__init__(daemon=True, name=f"observe-{run_id}")
        self.moto, self.run_id, self.proc = moto, run_id, proc
        self.seen: dict[str, list[str]] = {}
        self.jobs: dict | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            s3, batch = self.moto.client("s3"), self.moto.client("batch")
            key = f"runs/{self.run_id}/jobs.json"
            while self.jobs is None and self.proc.poll() is None:
                try:
                    self.jobs = json.loads(s3.get_object(Bucket=RESULTS_BUCKET, Key=key)["Body"].read())
                except s3.exceptions.NoSuchKey:
                    time.sleep(0.2)
            if self.jobs is None:
                return
            (parent,) = self.jobs["process_jobs"]
            ids = [f"{parent['job_id']}:{i}" for i in range(parent["size"])] + [self.jobs["merge_job_id"]]
            while True:
                ended = self.proc.poll() is not None
                for job in batch.describe_jobs(jobs=ids)["jobs"]:
                    history = self.seen.setdefault(job["jobId"], [])
                    if not history or history[-1] != job["status"]:
                        history.append(job["status"])
                if ended:
                    return
                time.sleep(0.5)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    @property
    def child_ids(self) -> list[str]:
        (parent,) = self.jobs["process_jobs"]
        return [f"{parent['job_id']}:{i}" for i in range(parent["size"])]


# ------------------------------------------------------------------------------------------
# the test
# ------------------------------------------------------------------------------------------


def test_launcher_runs_experiment_on_moto_batch_in_containers(e2e_state, tmp_path):  # noqa: PLR0915
    import xarray as xr  # lazy: xarray ~1.7 s

    t = Timings()
    with t.phase("podman API service + moto server (Batch in docker mode)"):
        podman = PodmanService(e2e_state).start()
        moto = MotoServer(e2e_state, docker_host=podman.docker_host, pid_file=e2e_state / "moto.pid").start()
    try:
        home = tmp_path / "home"
        (home / "mpl").mkdir(parents=True)
        env = launcher_env(moto, home)

        with t.phase("demo experiment (3 FOVs, 96x96) to moto S3; local executor started"):
            s3 = moto.client("s3")
            experiment = demo_experiment_in_s3(s3, tmp_path / "experiment", FOVS, DATA_BUCKET, RESULTS_BUCKET)
            local_results = tmp_path / "local"
            local_env = {k: v for k, v in env.items() if k != "AWS_ENDPOINT_URL"}
            local = subprocess.Popen(
                [sys.executable, str(LAUNCHER), "--experiment-url", str(experiment), "--recipe",
                 str(ISS_RECIPE), "--results-url", str(local_results), "--run-id", OK_RUN,
                 "--workers", "1", "--quiet"],
                env=local_env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, start_new_session=True,
            )

        with t.phase("terraform init + apply against moto"):
            outputs = {k: v["value"] for k, v in apply_module(moto, tmp_path).items()}
        # moto writes the containers' logs to /aws/batch/job whatever the job definition's
        # awslogs-group: the launcher reads a saved copy of the outputs that names that group.
        assert outputs["log_group_name"].startswith("/aws/batch/")
        tf_outputs = tmp_path / "tf-outputs.json"
        saved = outputs | {"log_group_name": MOTO_LOG_GROUP}
        if isinstance(saved.get("launcher_config"), dict):  # the one object the launcher reads first
            saved["launcher_config"] = saved["launcher_config"] | {"log_group_name": MOTO_LOG_GROUP}
        tf_outputs.write_text(json.dumps({k: {"value": v} for k, v in saved.items()}))
        batch = moto.client("batch")
        jobdefs = batch.describe_job_definitions(jobDefinitions=[
            outputs["process_fov_job_definition_arn"], outputs["merge_job_definition_arn"]])["jobDefinitions"]
        for jd in jobdefs:
            described_env = {e["name"]: e["value"] for e in jd["containerProperties"]["environment"]}
            assert described_env["AWS_ENDPOINT_URL"] == moto.endpoint
            assert described_env["FOV_INDEX_OFFSET"] == "0"

        failing_recipe = tmp_path / "failing_recipe.py"
        failing_recipe.write_text(ISS_RECIPE.read_text() + FAILING_WRAPPER)
        with t.phase("launcher --executor batch: runs e2e-ok and e2e-fail in containers"):
            ok_proc = _launch(OK_RUN, ISS_RECIPE, tf_outputs, env, tmp_path)
            fail_proc = _launch(FAIL_RUN, failing_recipe, tf_outputs, env, tmp_path)
            observers = {OK_RUN: Observer(moto, OK_RUN, ok_proc), FAIL_RUN: Observer(moto, FAIL_RUN, fail_proc)}
            for observer in observers.values():
                observer.start()
            fail_rc, fail_out, fail_err = finish(fail_proc, "launcher of e2e-fail", LAUNCHER_TIMEOUT_S)
            t.say(f"e2e-fail launcher exited {fail_rc}")
            ok_rc, ok_out, ok_err = finish(ok_proc, "launcher of e2e-ok", LAUNCHER_TIMEOUT_S)
            t.say(f"e2e-ok launcher exited {ok_rc}")
            for observer in observers.values():
                observer.join(timeout=30)
            local_rc, local_out, local_err = finish(local, "local executor", LAUNCHER_TIMEOUT_S)

        with t.phase("checks"):
            for run_id, observer in observers.items():
                assert observer.error is None, f"observer of {run_id}: {observer.error!r}"
                assert observer.jobs is not None, f"{run_id}: no jobs.json was written"
                t.say(f"{run_id} statuses seen: {json.dumps(observer.seen)}")

            # --- e2e-ok: the launcher's follow mode ends with the merged result -------------
            assert ok_rc == 0, f"stdout:\n{ok_out}\nstderr:\n{ok_err[-6000:]}"
            merged_url = f"{RESULTS_URL}/{OK_RUN}/merged_decoded_fovs.nc"
            assert f"merged: {merged_url}" in ok_out, ok_out
            ok = observers[OK_RUN]
            children = {j["jobId"]: j for j in batch.describe_jobs(jobs=ok.child_ids)["jobs"]}
            assert sorted(children) == sorted(ok.child_ids)
            for job_id, job in children.items():
                seen = ok.seen.get(job_id, [])
                assert "RUNNING" in seen and seen[-1] == "SUCCEEDED", (job_id, seen)
                assert seen.index("RUNNING") < seen.index("SUCCEEDED"), (job_id, seen)
                assert job["status"] == "SUCCEEDED"
                assert job["startedAt"] <= job["stoppedAt"], job
                # It ran in a container: the worker's own output is in its log stream.
                assert log_lines(moto, job["container"]["logStreamName"]), job_id
            (merge,) = batch.describe_jobs(jobs=[ok.jobs["merge_job_id"]])["jobs"]
            assert merge["status"] == "SUCCEEDED", merge
            assert "RUNNING" in ok.seen[merge["jobId"]], ok.seen[merge["jobId"]]
            last_child = max(j["stoppedAt"] for j in children.values())
            assert merge["startedAt"] >= last_child, (merge["startedAt"], last_child)
            assert log_lines(moto, merge["container"]["logStreamName"])
            first_child = min(j["startedAt"] for j in children.values())
            t.say(f"e2e-ok: children ran from +0 to +{(last_child - first_child) / 1000:.1f} s; the merge "
                  f"started {(merge['startedAt'] - last_child) / 1000:.1f} s after the last child stopped")

            # --- the same experiment on the local executor -----------------------------------
            assert local_rc == 0, f"stdout:\n{local_out}\nstderr:\n{local_err[-4000:]}"
            merged = tmp_path / "merged_from_batch.nc"
            s3.download_file(RESULTS_BUCKET, f"runs/{OK_RUN}/merged_decoded_fovs.nc", str(merged))
            from_batch = open_table(merged)
            from_local = open_table(local_results / OK_RUN / "merged_decoded_fovs.nc")
            assert from_batch.sizes["features"] > 0
            assert sorted(set(from_batch["fov"].values.tolist())) == sorted(FOVS)
            xr.testing.assert_identical(from_batch, from_local)

            # --- e2e-fail: one FOV fails, the launcher reports it and stops ------------------
            assert fail_rc != 0, f"stdout:\n{fail_out}\nstderr:\n{fail_err[-6000:]}"
            fail = observers[FAIL_RUN]
            fail_index = FOVS.index(FAIL_FOV)
            children = {j["jobId"]: j for j in batch.describe_jobs(jobs=fail.child_ids)["jobs"]}
            for i, job_id in enumerate(fail.child_ids):
                want = "FAILED" if i == fail_index else "SUCCEEDED"
                assert children[job_id]["status"] == want, (job_id, children[job_id])
                assert "RUNNING" in fail.seen.get(job_id, []), (job_id, fail.seen.get(job_id))
            failed_stream = children[fail.child_ids[fail_index]]["container"]["logStreamName"]
            assert any(FAIL_MESSAGE in line for line in log_lines(moto, failed_stream))
            assert f"FOV {FAIL_FOV} (index {fail_index}) failed" in fail_err, fail_err[-6000:]
            assert f"last lines of log {MOTO_LOG_GROUP} {failed_stream}:" in fail_err, fail_err[-6000:]
            shown = [line for line in fail_err.splitlines() if line.startswith("  | ")]
            assert any(FAIL_MESSAGE in line for line in shown), fail_err[-6000:]
            assert f"1 of {len(FOVS)} FOVs failed ({FAIL_FOV})" in fail_err, fail_err[-6000:]
            (merge,) = batch.describe_jobs(jobs=[fail.jobs["merge_job_id"]])["jobs"]
            assert merge["status"] not in ("RUNNING", "SUCCEEDED") and "startedAt" not in merge, merge
            listed = s3.list_objects_v2(Bucket=RESULTS_BUCKET, Prefix=f"runs/{FAIL_RUN}/")
            assert f"runs/{FAIL_RUN}/merged_decoded_fovs.nc" not in {o["Key"] for o in listed["Contents"]}
            t.say("e2e-fail launcher stderr (tail):\n" + "\n".join(fail_err.splitlines()[-30:]))

            # moto's merge waits on the parent forever (its parent never fails): cancel it.
            cancel = subprocess.run(
                [sys.executable, str(LAUNCHER), "cancel", FAIL_RUN, "--executor", "batch",
                 "--tf-outputs", str(tf_outputs), "--results-url", RESULTS_URL],
                env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
            )
            assert cancel.returncode == 0, cancel.stdout + cancel.stderr
            assert fail.jobs["merge_job_id"] in cancel.stdout, cancel.stdout
    finally:
        with t.phase("stop moto server and podman service"):
            moto.stop()
            podman.stop()
        t.say("phases: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in t.rows))
