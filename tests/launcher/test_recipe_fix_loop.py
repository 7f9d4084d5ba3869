"""A new recipe that fails on every FOV, fixed in place, and the printed advice pasted as is: the
fix tried on the failed FOVs alone (a partial run) succeeds; the results folder then moved, and
`status` works where it now is."""

from __future__ import annotations

import json
import shlex
import shutil

from tests.support.shell import typed
from tests.support.workflow import ISS_RECIPE, write_experiment

BROKEN = '''

_iss_process_fov = process_fov


def process_fov(fov, codebook):
    raise ValueError("spot threshold not tuned yet")  # the bug
    return _iss_process_fov(fov, codebook)
'''


def _printed(stderr: str, after: str) -> str:
    """The command printed on the line after ``after``."""
    return stderr.split(after, 1)[1].split(":\n", 1)[1].splitlines()[0].strip()


def test_a_recipe_failing_everywhere_fixed_in_place_and_the_advice_pasted_succeeds(tmp_path):
    experiment = write_experiment(tmp_path / "my data")
    recipe = tmp_path / "my recipe.py"
    recipe.write_text(ISS_RECIPE.read_text() + BROKEN)
    results = tmp_path / "my results"
    first = typed(f"make run EXPERIMENT={shlex.quote(str(experiment))} RECIPE={shlex.quote(str(recipe))} "
                   f"RESULTS={shlex.quote(str(results))} RUN_ARGS='--run-id broken --quiet --workers 1 "
                   "--max-failures 2'")
    assert first.returncode != 0, first.stderr[-3000:]
    assert "stopped early" in first.stderr and "spot threshold not tuned yet" in first.stderr
    assert "RESUME=" not in first.stderr  # a resume would rerun the stored, broken recipe: a loop
    try_fix = _printed(first.stderr, "After fixing the recipe, try it on the FOV(s) it failed on")
    whole = _printed(first.stderr, "Then run the fixed recipe on the whole experiment")
    assert "FOVS=A1,C-3" in shlex.split(try_fix)  # the experiment's first two FOVs, one at a time

    recipe.write_text(recipe.read_text().replace(
        '    raise ValueError("spot threshold not tuned yet")  # the bug\n', ""))  # fixed in place
    tried = typed(try_fix)
    assert tried.returncode == 0, tried.stderr[-3000:]
    assert "a partial run: 2 of the experiment's 4 FOVs" in tried.stderr
    assert "partial: 2 of the experiment's 4 FOVs" in tried.stdout
    # the whole run is the same command without FOVS= (test_make_run pastes that form and runs it)
    assert shlex.split(whole) == [w for w in shlex.split(try_fix) if not w.startswith("FOVS=")]
    merged = [p.name for p in results.iterdir() if (p / "merged_decoded_fovs.nc").exists()]
    assert len(merged) == 1 and "broken" not in merged

    # the results folder moved (or shared): status works where it is now (a resume there:
    # test_scientist_loop.py)
    moved = tmp_path / "shared" / "moved results"
    moved.parent.mkdir()
    shutil.move(str(results), str(moved))
    for run_id in merged:
        status = typed(f".venv/bin/python scripts/starfish_workflow.py status {run_id} "
                        f"--results-url {shlex.quote(str(moved))}")
        state = json.loads(status.stdout)
        assert status.returncode == 0 and state["run_root"] == str(moved / run_id)
        for name in ("summary.json", "manifest.json"):
            assert str(results) not in (moved / run_id / name).read_text(), name
