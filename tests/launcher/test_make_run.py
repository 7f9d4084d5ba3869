"""`make run` as a scientist types it: a failed FOV, then the commands it prints, run as printed."""

from __future__ import annotations

import shlex

from tests.support.shell import typed
from tests.support.workflow import FAILING_WRAPPER, recipe_with, write_experiment


def _printed(stderr: str, after: str) -> str:
    return stderr.split(after, 1)[1].splitlines()[0].strip()


def test_make_run_failure_prints_make_commands_that_work_as_printed(tmp_path):
    experiment = write_experiment(tmp_path / "my data")  # a space in every path
    recipe = recipe_with(tmp_path, FAILING_WRAPPER, name="my recipe.py")
    results = tmp_path / "my results"
    first = typed(f"make run EXPERIMENT={shlex.quote(str(experiment))} RECIPE={shlex.quote(str(recipe))} "
                  f"RESULTS={shlex.quote(str(results))} RUN_ARGS='--run-id mk --quiet'", {"FAIL_FOVS": "b_2"})
    assert first.returncode != 0
    assert "recipe raised RuntimeError: synthetic failure in b_2" in first.stderr
    # a recipe error: a new run of the fixed recipe, tried first on the FOV it failed on; no resume,
    # which would rerun the run's own recipe
    try_fix = _printed(first.stderr, "try it on the FOV(s) it failed on (b_2):\n")
    new_run = _printed(first.stderr, "Then run the fixed recipe on the whole experiment, as a new run:\n")
    assert "RESUME=" not in first.stderr
    assert try_fix == f"{new_run} FOVS=b_2" and new_run.startswith("make run EXPERIMENT=")

    tried = typed(try_fix)  # the cause is gone (FAIL_FOVS unset): the fix, tried on b_2 alone, works
    assert tried.returncode == 0, tried.stderr[-3000:]
    assert "1 FOVs (a partial run: 1 of the experiment's 4 FOVs)" in tried.stderr

    rerun = typed(new_run)  # and the new run of the (now working) recipe works as printed too
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    runs = sorted(p.name for p in results.iterdir() if (p / "merged_decoded_fovs.nc").exists())
    assert len(runs) == 2 and "mk" not in runs
