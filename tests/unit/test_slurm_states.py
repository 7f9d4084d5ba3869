"""Reading Slurm's answers and writing its job scripts: pure functions. ``sacct`` needs a
slurmdbd, which the one-node test cluster does not run, so its output is the documented
``sacct -X -n -P`` text (sacct(1): "-P, --parsable2 ... delimited by '|'"; pending array tasks
are printed as one ``<id>_[<range>%<limit>]`` line)."""

from __future__ import annotations

import argparse
import shlex

import pytest

from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.core.manifest import Manifest
from starfish_batch.core.records import FovRecord
from starfish_batch.launcher import cli
from starfish_batch.launcher.executors.slurm import options, states
from starfish_batch.launcher.executors.slurm.follow import core_hours
from starfish_batch.launcher.executors.slurm.jobs import array_parts, job_script

SACCT = """\
41_0|COMPLETED|None|00:01:05|2|0:0
41_1|FAILED|NonZeroExitCode|00:00:09|2|1:0
41_2|OUT_OF_MEMORY|OutOfMemory|00:00:40|2|0:125
41_3|CANCELLED by 1000|None|1-02:03:04|2|0:15
41_[4-6,9%2]|PENDING|JobArrayTaskLimit|00:00:00|2|0:0
42|PENDING|Dependency|00:00:00|1|0:0
"""


def test_sacct_lines_become_one_state_per_task():
    found = {s.name: s for s in states.parse_sacct(SACCT)}
    assert sorted(found) == ["41_0", "41_1", "41_2", "41_3", "41_4", "41_5", "41_6", "41_9", "42"]
    assert found["41_0"].state == "COMPLETED" and found["41_0"].seconds == 65 and found["41_0"].cpus == 2
    assert found["41_1"].failed and found["41_1"].exit_code == 1 and found["41_1"].reason == "NonZeroExitCode"
    assert found["41_2"].state == states.OUT_OF_MEMORY and found["41_2"].exit_code is None
    assert found["41_3"].exit_code == 128 + 15  # SIGTERM
    assert found["41_3"].state == "CANCELLED" and found["41_3"].seconds == 86400 + 2 * 3600 + 3 * 60 + 4
    assert found["41_5"].state == "PENDING" and not found["41_5"].ended
    assert found["42"].task is None and found["42"].reason == "Dependency"


def test_squeue_lines_and_core_hours():
    found = states.parse_squeue("7_0|RUNNING|None|30:00|4\n7_1|PENDING|Resources|0:00|4\n8|PENDING|Dependency|0:00|1\n")
    assert [s.name for s in found] == ["7_0", "7_1", "8"]
    assert core_hours(found) == pytest.approx(2.0)  # 4 CPUs for half an hour


def test_scontrol_show_job_names_array_tasks():
    shown = states.parse_show_job(
        "JobId=9 ArrayJobId=5 ArrayTaskId=2 JobState=FAILED Reason=NonZeroExitCode ExitCode=3:0\n"
        "JobId=5 ArrayJobId=5 ArrayTaskId=4-7 JobState=PENDING ExitCode=0:0\n"
        "JobId=12 JobName=merge JobState=COMPLETED ExitCode=0:0\n")
    assert states.exit_code_of(shown["5_2"]) == 3
    assert "12" in shown and "5" in shown


def test_arrays_split_below_max_array_size():
    assert array_parts(100, 1001) == [(0, 100)]
    assert array_parts(2500, 1001) == [(0, 1001), (1001, 1001), (2002, 498)]


def test_job_script_maps_the_array_task_to_the_worker_index_with_the_contract_environment():
    manifest = Manifest(run_id="r1", experiment_url="/e/experiment.json", recipe_url="/res/r1/recipe.py",
                        recipe_sha256="0" * 64, results_url="/res", fovs=["a", "b"])
    script = job_script("process-fov", ["/venv/bin/process-fov"], manifest, "/res/r1/manifest.json", 1001)
    assert "export RUN_MANIFEST_URL=/res/r1/manifest.json\n" in script
    assert "export FOV_INDEX_OFFSET=1001\n" in script
    assert 'export AWS_BATCH_JOB_ARRAY_INDEX="${SLURM_ARRAY_TASK_ID}"\n' in script
    assert script.endswith("exec /venv/bin/process-fov\n")
    merge = job_script("merge-batch-job", ["/venv/bin/merge-batch-job"], manifest, "/res/r1/manifest.json")
    assert "SLURM_ARRAY_TASK_ID" not in merge and "export FOV_INDEX_OFFSET=0\n" in merge


def _args(**kw) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    options.add_arguments(parser)
    return parser.parse_args([f"--{k.replace('_', '-')}={v}" for k, v in kw.items()])


def test_flags_make_sbatch_options_and_refuse_what_the_launcher_sets():
    opts = options.from_args(_args(partition="gpu", time="2:00:00", mem="4G", sbatch_args="--constraint=avx2"))
    assert opts.memory_mib == 4096
    assert opts.sbatch_options() == ["--partition=gpu", "--time=2:00:00", "--constraint=avx2"]
    assert opts.flags() == "--partition gpu --time 2:00:00 --mem 4096 --sbatch-args=--constraint=avx2"
    assert options.from_args(_args(sbatch_args="--constraint=avx2")).extra == ["--constraint=avx2"]
    with pytest.raises(StarfishBatchError, match="--sbatch-args --array=0-3: the launcher sets --array itself"):
        options.from_args(_args(sbatch_args="--array=0-3"))
    with pytest.raises(SystemExit):
        _args(time="two hours")


def test_fov_timeout_is_each_jobs_time_limit_in_whole_minutes():
    """--fov-timeout applies on every executor: on Slurm it is the job's --time, rounded up."""
    args = _args(partition="gpu")
    args.fov_timeout = 90
    assert options.from_args(args).sbatch_options() == ["--partition=gpu", "--time=2"]
    args = _args(time="10")
    args.fov_timeout = 90
    with pytest.raises(StarfishBatchError, match="--fov-timeout 90 and --time 10 both set"):
        options.from_args(args)


def test_defaults_from_the_runs_estimate():
    def record(peak, seconds):
        return FovRecord(fov="a", recipe_sha256="0" * 64, n_features=1, seconds=seconds,
                         peak_memory_bytes=int(peak), cpus=1)

    found = options.quoted_defaults([record(1.1e9, 300.0), record(0.9e9, 100.0)])
    assert found["memory_mib"] >= 1.1e9 / 2**20 and found["vcpus"] == 1
    assert found["time"] == "15"  # three times the slowest FOV's 5 minutes
    assert options.quoted_defaults([]) == {}


def test_commands_printed_after_a_slurm_run_repeat_its_executor_and_flags(monkeypatch):
    manifest = Manifest(run_id="r1", experiment_url="/e/experiment.json", recipe_url="/res/r1/recipe.py",
                        recipe_sha256="0" * 64, results_url="/res", fovs=["a"])
    args = cli.parse_args(["--executor", "slurm", "--experiment-url", "/e/experiment.json", "--recipe", "r.py",
                           "--results-url", "/res", "--partition", "short", "--mem", "2G",
                           "--sbatch-args=--exclude=node7 --constraint=avx2"])
    monkeypatch.delenv(cli.VIA_MAKE_VAR, raising=False)
    assert cli.resume_hint(manifest, args).endswith(
        " --executor slurm --partition short --mem 2048 --sbatch-args='--exclude=node7 --constraint=avx2' "
        "--resume r1 --results-url /res")
    monkeypatch.setenv(cli.VIA_MAKE_VAR, "1")
    words = shlex.split(cli.resume_hint(manifest, args))
    assert words[:5] == ["make", "run", "RESUME=r1", "RESULTS=/res", "EXECUTOR=slurm"]
    assert shlex.split(words[5].removeprefix("RUN_ARGS=")) == [
        "--partition", "short", "--mem", "2048", "--sbatch-args=--exclude=node7 --constraint=avx2"]
