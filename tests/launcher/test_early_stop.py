"""A recipe that fails on every FOV stops the run after the first --max-failures FOVs (plus
those already running), locally and on Batch (in-process moto), saying so once."""

from __future__ import annotations

import time

from starfish_batch.demo.experiment import write_demo_experiment
from starfish_batch.launcher import cli
from starfish_batch.launcher.early_stop import BrokenRecipeWatch, signature
from starfish_batch.launcher.pricing import PriceTable
from tests.support import batch as tb
from tests.support.workflow import launch

BROKEN = "def process_fov(fov, codebook):\n    raise ValueError('broken recipe')\n"
ERROR = "recipe raised ValueError: broken recipe"


def test_signature_and_watch():
    assert signature(f"process-fov: error: FOV A1: {ERROR}", "A1") == ERROR
    watch = BrokenRecipeWatch(2)
    watch.add("a", False, ERROR)
    assert watch.error is None
    watch.add("b", False, ERROR)
    assert watch.error == ERROR and watch.fovs == ["a", "b"]
    mixed = BrokenRecipeWatch(2)
    mixed.add("a", False, ERROR)
    mixed.add("b", False, "recipe raised KeyError: 'x'")
    assert mixed.error is None  # two different errors: not one broken recipe
    working = BrokenRecipeWatch(1)
    working.add("a", True)
    working.add("b", False, ERROR)
    assert working.error is None  # a FOV succeeded first: the recipe works somewhere
    assert BrokenRecipeWatch(0).error is None


def test_local_run_stops_after_max_failures(tmp_path):
    experiment = write_demo_experiment(tmp_path / "exp", n_fovs=6, shape=(64, 64), n_spots=5)
    recipe = tmp_path / "broken.py"
    recipe.write_text(BROKEN)
    proc = launch("--experiment-url", experiment, "--recipe", recipe, "--results-url", tmp_path / "results",
                  "--run-id", "broken", "--workers", "1", "--max-failures", "2")
    assert proc.returncode == 1
    assert proc.stderr.count("stopped early") == 1
    assert (f"stopped early: the first 2 FOVs to finish all failed with the same error: {ERROR} (A1, A2); "
            f"4 FOVs were not started") in proc.stderr
    logs = sorted(p.name for p in (tmp_path / "results" / "broken" / "logs").iterdir())
    assert logs == ["A1.log", "A2.log"]  # one worker at a time: nothing ran after the second
    # a recipe error: a new run of the fixed recipe, tried first on the FOVs it failed on; a resume
    # would rerun this run's own recipe and stop the same way
    assert "--resume" not in proc.stderr
    assert f"--recipe {recipe} --results-url {tmp_path / 'results'} --fovs A1,A2" in proc.stderr


def test_batch_run_cancels_the_rest_and_the_merge(aws, capsys):
    executor, manifest, run = tb.submitted(aws, 6, run_id="brk")
    parent = run.process_jobs[0].job_id
    now = int(time.time() * 1000)
    for i in range(6):
        tb.set_state(f"{parent}:{i}", "FAILED" if i < 3 else "RUNNABLE")
    for i in range(3):  # each failed child's log ends with the worker's own error line
        child = aws.batch.describe_jobs(jobs=[f"{parent}:{i}"])["jobs"][0]
        stream = child["attempts"][-1]["container"]["logStreamName"]
        aws.logs.create_log_stream(logGroupName=tb.LOG_GROUP, logStreamName=stream)
        aws.logs.put_log_events(logGroupName=tb.LOG_GROUP, logStreamName=stream, logEvents=[
            {"timestamp": now, "message": f"process-fov: error: FOV {manifest.fovs[i]}: {ERROR}"}])
    tb.set_state(parent, "PENDING")
    tb.set_state(run.merge_job_id, "PENDING")
    outcome = executor.follow(manifest, run, max_failures=3)
    assert outcome.state == "stopped_early" and outcome.stopped_early == ERROR
    assert set(outcome.cancelled) == {parent, run.merge_job_id}
    merge = aws.batch.describe_jobs(jobs=[run.merge_job_id])["jobs"][0]
    assert f"the first 3 FOVs all failed with: {ERROR}" in merge["statusReason"]
    args = cli.parse_args(["--executor", "batch", "--tf-outputs", str(aws.outputs_file), "--results-url", tb.RESULTS])
    assert cli.finish_batch(outcome, manifest, run, args, tb.RESULTS) == 1
    err = capsys.readouterr().err
    assert (f"stopped early: the first 3 FOVs to finish all failed with the same error: {ERROR} "
            f"(fov_000, fov_001, fov_002); the rest of the run and its merge were cancelled (2 job(s))") in err
    assert "--fovs fov_000,fov_001,fov_002 --tf-outputs" in err and "--resume" not in err


def test_batch_run_over_its_max_cost_is_cancelled(aws, capsys):
    """Four children running for an hour each (AWS's attempts, given to moto's jobs) at 1 vCPU
    and 2 GB on Fargate: 4 x $0.04937 = $0.197 so far, past a $0.10 cap."""
    executor, manifest, run = tb.submitted(aws, 4, run_id="dear")
    parent = run.process_jobs[0].job_id
    hour_ago = int(time.time() * 1000) - 3_600_000
    for i in range(4):
        tb.set_state(f"{parent}:{i}", "RUNNING")
        tb.moto_job(f"{parent}:{i}").attempts = [{"startedAt": hour_ago, "container": {}}]
    tb.set_state(parent, "RUNNING")
    tb.set_state(run.merge_job_id, "PENDING")
    outcome = executor.follow(manifest, run, max_cost=0.10, prices=PriceTable.load())
    assert outcome.state == "over_budget"
    assert abs(outcome.cost_usd - 4 * (0.04048 + 2 * 0.004445)) < 1e-3
    assert set(outcome.cancelled) == {parent, run.merge_job_id}
    args = cli.parse_args(["--executor", "batch", "--tf-outputs", str(aws.outputs_file), "--results-url", tb.RESULTS,
                           "--max-cost", "0.10"])
    assert cli.finish_batch(outcome, manifest, run, args, tb.RESULTS) == 1
    assert "$0.20 (an estimate at list prices), passed --max-cost $0.10" in capsys.readouterr().err


def test_batch_run_under_its_max_cost_is_followed(aws):
    executor, manifest, run = tb.submitted(aws, 2, run_id="cheap")
    parent = run.process_jobs[0].job_id
    tb.set_state(f"{parent}:0", "RUNNING")
    tb.set_state(run.merge_job_id, "PENDING")
    polls = []

    def sleep(seconds: float) -> None:
        polls.append(seconds)
        raise KeyboardInterrupt  # one poll is enough: it was not stopped for cost

    executor.sleep = sleep
    assert executor.follow(manifest, run, max_cost=0.10, prices=PriceTable.load()).state == "interrupted"
    assert polls
