"""The Slurm executor against a real one-node Slurm (slurmctld and slurmd on localhost, memory
enforced by cgroup): the run a scientist starts with ``--executor slurm``.

``make test`` runs the quick cases; the long ones are marked ``slow`` (``make test-slow``, and
``make test-slurm`` runs them all).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from starfish_batch.demo.experiment import write_demo_experiment
from starfish_batch.launcher.executors.base import SilentObserver
from starfish_batch.launcher.executors.slurm import SlurmExecutor, SlurmOptions
from starfish_batch.launcher.executors.slurm.commands import SlurmCommands
from starfish_batch.launcher.runs import new_run
from tests.support import slurm
from tests.support.faults import ctrl_c_open
from tests.support.workflow import FAILING_WRAPPER, LAUNCHER, assert_same_table, launch, recipe_with

pytestmark = pytest.mark.slurm
long_case = pytest.mark.slow  # make test-slow, make test-slurm

FOVS = ["A1", "b_2"]
# b_2 asks for 2 GiB more while its job has less than 2 GiB (Slurm sets SLURM_MEM_PER_NODE):
# killed for memory at --mem 1024, done at 2048. Outside Slurm it is the ISS recipe.
GREEDY_WRAPPER = '''

_iss_process_fov = process_fov


def process_fov(fov, codebook):
    import os

    if fov.name == os.environ.get("GREEDY_FOV") and 0 < int(os.environ.get("SLURM_MEM_PER_NODE", "0")) < 2048:
        import numpy as np

        hog = np.ones(2 * 2**30 // 8)  # written: every page is used
        print(hog.sum())
    return _iss_process_fov(fov, codebook)
'''
# The FOVs in $SLOW_FOVS take a while, so a launcher can be killed while they run.
SLOW_WRAPPER = '''

_iss_process_fov = process_fov


def process_fov(fov, codebook):
    import os
    import time

    if fov.name in os.environ.get("SLOW_FOVS", "").split(","):
        time.sleep(40)
    return _iss_process_fov(fov, codebook)
'''


def _experiment(root: Path, names=FOVS, **kwargs) -> Path:
    return write_demo_experiment(root, fov_names=names, **{"shape": (96, 96), "n_spots": 12, "seed": 5, **kwargs})


def _env(conf: str, **more: str) -> dict[str, str]:
    return {"SLURM_CONF": conf, "STARFISH_BATCH_SLURM_POLL_MAX": "2", **more}


def _slurm_run(experiment: Path, recipe: Path, results: Path, run_id: str, *flags: str) -> list[str]:
    return ["--executor", "slurm", "--experiment-url", str(experiment), "--recipe", str(recipe),
            "--results-url", str(results), "--run-id", run_id, *flags]


def test_slurm_run_equals_local_and_a_fov_out_of_memory_is_resubmitted_alone(slurm_cluster, tmp_path):
    """The merged table of a Slurm run equals the local executor's; the FOV killed for memory at
    1024 MiB is resubmitted alone with 2048 MiB and succeeds, the other is not run again."""
    import xarray as xr  # lazy: xarray ~1.7 s

    experiment = _experiment(tmp_path / "experiment")
    recipe = recipe_with(tmp_path, GREEDY_WRAPPER)
    local = subprocess.Popen(  # at the same time: the two runs share the machine's two cores
        [sys.executable, str(LAUNCHER), "--experiment-url", str(experiment), "--recipe", str(recipe),
         "--results-url", str(tmp_path / "local"), "--run-id", "local", "--workers", "1", "--quiet"],
        env={**os.environ, "GREEDY_FOV": "b_2"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc = launch(*_slurm_run(experiment, recipe, tmp_path / "results", "oom", "--mem", "1024",
                              "--max-memory", "2048"),
                  env=_env(slurm_cluster, GREEDY_FOV="b_2"))
    local_out, local_err = local.communicate(timeout=600)
    assert local.returncode == 0, local_err[-3000:]
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "FOV b_2 (index 1) failed: Slurm OUT_OF_MEMORY" in proc.stderr
    assert "1 FOV(s) ran out of memory with 1024 MiB (b_2): resubmitted with 2048 MiB" in proc.stderr
    run = tmp_path / "results" / "oom"
    first = json.loads((run / "jobs.json").read_text())
    again = json.loads((run / "jobs-resume-1.json").read_text())
    assert first["resources"]["memory_mib"] == 1024 and again["resources"]["memory_mib"] == 2048
    assert [j["size"] for j in again["process_jobs"]] == [1]
    assert json.loads((run / "manifest-resume-1.json").read_text())["fovs"] == ["b_2"]
    logs = {p.name: p.read_text() for p in (run / "logs" / "slurm").glob("process-fov-*.log")}
    assert len(logs) == 3  # two tasks, then one
    assert sum("process-fov: FOV A1: " in text for text in logs.values()) == 1, logs  # A1 ran once
    with xr.open_dataarray(run / "merged_decoded_fovs.nc") as merged, \
            xr.open_dataarray(tmp_path / "local" / "local" / "merged_decoded_fovs.nc") as reference:
        assert_same_table(merged.load(), reference.load())


@long_case
def test_slurm_fov_failing_is_reported_with_its_state_and_log(slurm_cluster, tmp_path):
    """One FOV's recipe fails: its Slurm state and log tail are printed, nothing is merged, the
    merge job is cancelled and the commands to go on name the Slurm executor."""
    experiment = _experiment(tmp_path / "experiment")
    recipe = recipe_with(tmp_path, FAILING_WRAPPER)
    proc = launch(*_slurm_run(experiment, recipe, tmp_path / "results", "fails", "--mem", "1536",
                              "--partition", "debug"),
                  env=_env(slurm_cluster, FAIL_FOVS="A1"))
    assert proc.returncode == 1, proc.stderr[-3000:]
    err = proc.stderr
    assert "FOV A1 (index 0) failed: Slurm FAILED (NonZeroExitCode): process-fov: error: FOV A1: " \
           "recipe raised RuntimeError: synthetic failure in A1; exit code 1; job " in err
    assert "last lines of log " in err and "/logs/slurm/process-fov-" in err
    assert "  | RuntimeError: synthetic failure in A1" in err
    assert "1 of 2 FOVs failed (A1)" in err
    assert "--executor slurm --partition debug --mem 1536 --experiment-url" in err  # the new run's command
    run = tmp_path / "results" / "fails"
    assert not (run / "merged_decoded_fovs.nc").exists()
    merge = json.loads((run / "jobs.json").read_text())["merge_job_id"]
    # cancelled by the launcher, or (when the array ended between two polls) started by
    # `afterany` and failed at once on the missing FOV: never merged either way
    assert slurm.settled(slurm_cluster, [merge])[merge] in ("CANCELLED", "FAILED")


def test_hundred_fovs_two_sbatch_calls_one_poll_call_and_ctrl_c_cancels_only_this_run(slurm_cluster, tmp_path,
                                                                                       monkeypatch):
    """100 FOVs: one array and one merge (2 sbatch calls), one squeue call per poll; Ctrl-C
    cancels the run's jobs, and not a job of someone else on the same cluster."""
    names = [f"f{i:03d}" for i in range(100)]
    experiment = _experiment(tmp_path / "experiment", names, shape=(32, 32), n_spots=1, n_rounds=2, n_channels=2,
                             nuclei_per_fov=0, targets=("ACTB", "GAPDH"))
    path, log = slurm.counting_path(tmp_path / "bin")
    env = {**os.environ, "SLURM_CONF": slurm_cluster, "PATH": path}
    other = subprocess.run(["sbatch", "--parsable", "--mem=64M", "--output=/dev/null", "--wrap", "sleep 120"], env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    manifest, url = new_run(str(experiment), str(recipe_with(tmp_path, "")), str(tmp_path / "results"),
                            run_id="hundred")

    polls = []

    class Observer(SilentObserver):
        def progress(self, counts, total):
            polls.append((dict(counts), total, slurm.calls(log, "squeue") + slurm.calls(log, "sacct")))

    def sleep(seconds):
        if len(polls) >= 3:
            raise KeyboardInterrupt  # Ctrl-C while following
        time.sleep(seconds)

    executor = SlurmExecutor(SlurmOptions(max_running=2), SlurmCommands(env=env), poll_initial=1, poll_max=1,
                             sleep=sleep)
    sub = executor.submit(manifest, url, resources={"vcpus": 1, "memory_mib": 512})
    assert slurm.calls(log, "sbatch") == 1 + 2  # the other user's job, then this run's two
    assert len(sub.process_jobs) == 1 and sub.process_jobs[0].size == 100
    try:
        outcome = executor.follow(manifest, sub, Observer())
        assert outcome.state == "interrupted"
        assert [p[2] for p in polls] == [1, 2, 3]  # one squeue call per poll, for all 100 FOVs
        assert all(total == 100 and sum(c.values()) == 100 for c, total, _ in polls)
        assert set(outcome.cancelled) == set(sub.job_ids)
        states = slurm.settled(slurm_cluster, [*sub.job_ids, other])
        assert states.pop(other) in ("PENDING", "RUNNING")  # not this run's: left alone
        assert set(states.values()) <= {"CANCELLED", "COMPLETED"}, states
        assert list(states.values()).count("CANCELLED") >= 98
    finally:
        subprocess.run(["scancel", other, *sub.job_ids], env=env, check=True)


@long_case
def test_cancel_command_and_status_of_a_run_submitted_without_waiting(slurm_cluster, tmp_path):
    """``run --no-wait`` submits and returns; ``status`` says where the run is; ``cancel`` cancels
    its jobs by id."""
    experiment = _experiment(tmp_path / "experiment")
    path, log = slurm.counting_path(tmp_path / "bin")
    env = _env(slurm_cluster, PATH=path)
    recipe = recipe_with(tmp_path, SLOW_WRAPPER)
    proc = launch(*_slurm_run(experiment, recipe, tmp_path / "results", "later", "--no-wait", "--max-running", "1"),
                  env={**env, "SLOW_FOVS": "A1,b_2"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert slurm.calls(log, "sbatch") == 2
    ids = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith(("process-fov", "merge-batch-job"))]
    where = ["--executor", "slurm", "--results-url", str(tmp_path / "results")]
    status = launch("status", "later", *where, env=env)
    assert status.returncode == 1, status.stderr[-2000:]  # not merged yet
    state = json.loads(status.stdout)
    assert state["fovs_done"] == 0 and state["jobs"][0]["jobId"] == ids[0]
    cancelled = launch("cancel", "later", *where, env=env)
    assert cancelled.returncode == 0, cancelled.stderr[-2000:]
    assert {line.split()[1] for line in cancelled.stdout.splitlines()} == set(ids)
    assert "Slurm job(s) cancelled (scancel)" in cancelled.stderr
    assert set(slurm.settled(slurm_cluster, ids).values()) == {"CANCELLED"}
    again = launch("cancel", "later", *where, env=env)
    assert "nothing to cancel" in again.stderr


@long_case
def test_resume_after_the_launcher_is_killed(slurm_cluster, tmp_path):
    """The launcher is killed (SIGKILL) while its jobs run; ``--resume`` cancels what it left
    in Slurm, processes only the FOVs without output, and merges."""
    experiment = _experiment(tmp_path / "experiment")
    recipe = recipe_with(tmp_path, SLOW_WRAPPER)
    results = tmp_path / "results"
    launcher = subprocess.Popen(
        [sys.executable, str(LAUNCHER), *_slurm_run(experiment, recipe, results, "killed", "--max-running", "1"),
         "--quiet"], env={**os.environ, **_env(slurm_cluster, SLOW_FOVS="b_2")},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run = results / "killed"
    deadline = time.monotonic() + 300
    while not (run / "fovs" / "A1.json").exists():  # A1 done, b_2 sleeping in its job
        assert time.monotonic() < deadline and launcher.poll() is None
        time.sleep(1)
    a1 = (run / "fovs" / "A1.json").read_bytes()
    launcher.send_signal(signal.SIGKILL)
    launcher.communicate(timeout=60)
    first = json.loads((run / "jobs.json").read_text())
    proc = launch("--executor", "slurm", "--resume", "killed", "--results-url", str(results),
                  env=_env(slurm_cluster))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resuming run killed: 1 of 2 FOVs left to process" in proc.stderr
    assert f"still had 2 job(s) in Slurm from an earlier launcher ({first['process_jobs'][0]['job_id']} " \
           f"{first['merge_job_id']}): cancelled" in proc.stderr
    assert (run / "merged_decoded_fovs.nc").exists()
    assert (run / "fovs" / "A1.json").read_bytes() == a1  # not run again
    assert json.loads((run / "manifest-resume-1.json").read_text())["fovs"] == ["b_2"]


def test_arrays_split_at_max_array_size_and_the_merge_waits_for_all(slurm_cluster, tmp_path):
    """Past MaxArraySize (as ``scontrol show config`` says; 1 here) a run is several arrays, each
    with its FOV offset, and the merge depends on every one (afterany)."""
    env = {**os.environ, "SLURM_CONF": slurm_cluster}
    manifest, url = new_run(str(_experiment(tmp_path / "experiment")), str(recipe_with(tmp_path, "")),
                            str(tmp_path / "results"), run_id="split")
    executor = SlurmExecutor(SlurmOptions(extra=["--hold"]), SlurmCommands(env=env))  # held: nothing runs
    executor._config = {**executor.commands.config(), "MaxArraySize": "1"}
    sub = executor.submit(manifest, url, resources={"vcpus": 1, "memory_mib": 256})
    try:
        assert [(j.offset, j.size) for j in sub.process_jobs] == [(0, 1), (1, 1)]
        scripts = [subprocess.run(["scontrol", "write", "batch_script", j.job_id, "-"], env=env, text=True,
                                  capture_output=True, check=True).stdout for j in sub.process_jobs]
        assert "export FOV_INDEX_OFFSET=0\n" in scripts[0] and "export FOV_INDEX_OFFSET=1\n" in scripts[1]
        shown = subprocess.run(["scontrol", "-o", "show", "job", sub.merge_job_id], env=env, text=True,
                               capture_output=True, check=True).stdout
        depends = shown.split("Dependency=", 1)[1].split()[0]
        assert all(f"afterany:{j.job_id}_*" in depends for j in sub.process_jobs), depends
    finally:
        subprocess.run(["scancel", *sub.job_ids], env=env, check=True)


@long_case
def test_max_cost_in_core_hours_cancels_the_run(slurm_cluster, tmp_path):
    """--max-cost on Slurm counts core-hours: past it, the run's jobs are cancelled."""
    experiment = _experiment(tmp_path / "experiment")
    recipe = recipe_with(tmp_path, SLOW_WRAPPER)
    proc = launch(*_slurm_run(experiment, recipe, tmp_path / "results", "costly", "--max-cost", "0.002"),
                  env=_env(slurm_cluster, SLOW_FOVS="A1,b_2"))  # 2 tasks x 40 s > 7.2 core-seconds
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "core-hours, past --max-cost 0.002 core-hours; the rest of the run and its merge were cancelled " \
           "(2 job(s))" in proc.stderr  # the array and the merge
    jobs = json.loads((tmp_path / "results" / "costly" / "jobs.json").read_text())
    ids = [j["job_id"] for j in jobs["process_jobs"]] + [jobs["merge_job_id"]]
    assert set(slurm.settled(slurm_cluster, ids).values()) == {"CANCELLED"}


@long_case
def test_fovs_whose_node_failed_are_resubmitted(slurm_cluster, tmp_path):
    """The node goes down under running FOVs (jobs that Slurm does not requeue itself end
    NODE_FAIL): the launcher resubmits them as they were, and the run is merged."""
    experiment = _experiment(tmp_path / "experiment")
    recipe = recipe_with(tmp_path, SLOW_WRAPPER)
    env = {**os.environ, **_env(slurm_cluster, SLOW_FOVS="A1,b_2")}
    launcher = subprocess.Popen(
        [sys.executable, str(LAUNCHER), *_slurm_run(experiment, recipe, tmp_path / "results", "nodefail",
                                                    "--mem", "1024", "--sbatch-args=--no-requeue"), "--quiet"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    jobs = tmp_path / "results" / "nodefail" / "jobs.json"
    node = ["scontrol", "update", "nodename=localhost"]
    deadline = time.monotonic() + 300
    try:
        while True:
            assert time.monotonic() < deadline and launcher.poll() is None
            if jobs.exists():
                array = json.loads(jobs.read_text())["process_jobs"][0]["job_id"]
                if list(slurm.job_states(slurm_cluster, [array]).values()) == ["RUNNING", "RUNNING"]:
                    break
            time.sleep(1)
        subprocess.run([*node, "state=down", "reason=starfish-batch test"], env=env, check=True)
    finally:
        for _ in range(60):  # resume is refused while the killed jobs are still completing
            time.sleep(1)
            if subprocess.run([*node, "state=resume"], env=env, capture_output=True).returncode == 0:
                break
        if launcher.poll() is None and not jobs.exists():
            launcher.kill()
    out, err = launcher.communicate(timeout=600)
    assert launcher.returncode == 0, err[-3000:]
    assert "failed: Slurm NODE_FAIL (its node failed)" in err
    assert "2 FOV(s) lost their node or were preempted (A1, b_2): resubmitted with 1024 MiB" in err
    assert (tmp_path / "results" / "nodefail" / "merged_decoded_fovs.nc").exists()


@long_case
def test_ctrl_c_on_the_launcher_cancels_the_runs_jobs(slurm_cluster, tmp_path):
    """Ctrl-C on a following launcher: its jobs are cancelled with scancel, exit 130, and the
    command to continue is printed."""
    experiment = _experiment(tmp_path / "experiment")
    recipe = recipe_with(tmp_path, SLOW_WRAPPER)
    launcher = subprocess.Popen(
        [sys.executable, str(LAUNCHER), *_slurm_run(experiment, recipe, tmp_path / "results", "stopped"), "--quiet"],
        env={**os.environ, **_env(slurm_cluster, SLOW_FOVS="A1,b_2")},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_open)
    jobs = tmp_path / "results" / "stopped" / "jobs.json"
    deadline = time.monotonic() + 300
    while not jobs.exists():
        assert time.monotonic() < deadline and launcher.poll() is None
        time.sleep(0.5)
    time.sleep(3)  # following now
    launcher.send_signal(signal.SIGINT)
    out, err = launcher.communicate(timeout=120)
    assert launcher.returncode == 130, err[-3000:]
    sub = json.loads(jobs.read_text())
    ids = [sub["process_jobs"][0]["job_id"], sub["merge_job_id"]]
    assert f"interrupted: the Slurm jobs of run stopped are cancelled ({' '.join(ids)})" in err
    assert "continue with: " in err and "--executor slurm --resume stopped" in err
    assert set(slurm.settled(slurm_cluster, ids).values()) == {"CANCELLED"}


# The launcher, with a Ctrl-C (a real SIGINT to itself) just after the Slurm jobs are submitted:
# once their ids are written to jobs.json, or once the launcher has said them, before it polls.
CTRL_C_AT = """
import os, signal, sys
from starfish_batch.core import storage
from starfish_batch.launcher import cli
from starfish_batch.launcher.executors.slurm import run

def ctrl_c_after(function, when):
    def hooked(*args, **kwargs):
        result = function(*args, **kwargs)
        if when(*args):
            os.kill(os.getpid(), signal.SIGINT)
        return result
    return hooked

if sys.argv[1] == "recorded":
    storage.write_text = ctrl_c_after(storage.write_text, lambda url, *_: url.endswith("/jobs.json"))
else:
    run.say = ctrl_c_after(run.say, lambda text="", *_: text.startswith("submitted run"))
sys.exit(cli.main(sys.argv[2:]))
"""


@pytest.mark.parametrize("moment", ["recorded", "said"])
def test_ctrl_c_right_after_the_submission_cancels_its_jobs(slurm_cluster, tmp_path, moment):
    """Ctrl-C between the sbatch calls and the first poll (the jobs exist, the follow has not
    started) cancels them too: none is left running without its launcher."""
    experiment = _experiment(tmp_path / "experiment")
    recipe = recipe_with(tmp_path, SLOW_WRAPPER)
    proc = subprocess.run(
        [sys.executable, "-c", CTRL_C_AT, moment,
         *_slurm_run(experiment, recipe, tmp_path / "results", "early"), "--quiet"],
        env={**os.environ, **_env(slurm_cluster, SLOW_FOVS="A1,b_2")}, capture_output=True, text=True,
        timeout=300, preexec_fn=ctrl_c_open)
    assert proc.returncode == 130, proc.stderr[-3000:]
    sub = json.loads((tmp_path / "results" / "early" / "jobs.json").read_text())
    ids = [sub["process_jobs"][0]["job_id"], sub["merge_job_id"]]
    assert set(slurm.settled(slurm_cluster, ids).values()) == {"CANCELLED"}, proc.stderr[-3000:]
    if moment == "said":
        assert f"interrupted: the Slurm jobs of run early are cancelled ({' '.join(ids)})" in proc.stderr
