"""`make run` and `make clean` as a scientist types them: paths with spaces, resumes, results kept."""

from __future__ import annotations

import argparse
import shlex

from starfish_batch.core.manifest import Manifest
from starfish_batch.launcher import cli
from tests.support.shell import make_dry_run, makefile_tree, typed


def test_make_clean_keeps_results(tmp_path):
    tree = makefile_tree(tmp_path)
    for folder in ("results/run-1", "demo", ".venv"):
        (tree / folder).mkdir(parents=True, exist_ok=True)
        (tree / folder / "file").write_text("x")
    assert typed("make clean", cwd=tree).returncode == 0
    assert (tree / "results" / "run-1" / "file").exists()
    assert not (tree / "demo").exists() and not (tree / ".venv").exists()


def test_make_run_passes_paths_with_spaces_whole(tmp_path):
    tree = makefile_tree(tmp_path)
    commands = make_dry_run(tree, "run", "EXPERIMENT=my data/experiment.json", "RECIPE=my recipe.py",
                        "RESULTS=my results")
    line = next(c for c in commands.splitlines() if "starfish_workflow.py" in c)
    argv = shlex.split(line)
    assert argv[argv.index("--experiment-url") + 1] == "my data/experiment.json"
    assert argv[argv.index("--recipe") + 1] == "my recipe.py"
    assert argv[argv.index("--results-url") + 1] == "my results"


def test_the_resume_the_launcher_suggests_under_make_runs_as_printed(tmp_path, monkeypatch):
    monkeypatch.setenv(cli.VIA_MAKE_VAR, "1")
    manifest = Manifest(run_id="r-1", experiment_url="/d/experiment.json", recipe_url="/res/r-1/recipe.py",
                        recipe_sha256="0" * 64, results_url="/my results", fovs=["A1"])
    args = argparse.Namespace(executor="local", tf_outputs=None, tf_dir=None, invocation="x", recipe=None)
    hint = cli.resume_hint(manifest, args)
    assert hint == "make run RESUME=r-1 RESULTS='/my results'"
    commands = make_dry_run(makefile_tree(tmp_path), *shlex.split(hint)[1:])
    argv = shlex.split(next(c for c in commands.splitlines() if "starfish_workflow.py" in c))
    # only the run and where it is: no demo experiment, recipe or ground truth mixed into a resume
    assert argv[argv.index("--resume") + 1] == "r-1"
    assert argv[argv.index("--results-url") + 1] == "/my results"
    assert not {"--experiment-url", "--recipe", "--ground-truth"} & set(argv)


def test_make_run_fovs_and_make_estimate_pass_what_was_typed(tmp_path):
    tree = makefile_tree(tmp_path)
    (tree / "demo").mkdir()
    (tree / "demo" / "experiment.json").write_text("{}")
    run = shlex.split(
        make_dry_run(tree, "run", "EXPERIMENT=my exp.json", "RECIPE=fix.py", "FOVS=A1,b 2").splitlines()[-1])
    assert run[run.index("--fovs") + 1] == "A1,b 2" and run[run.index("--recipe") + 1] == "fix.py"
    estimate = shlex.split(make_dry_run(tree, "estimate", "EXPERIMENT=my exp.json", "RECIPE=r.py", "RESULTS=out",
                                    "SAMPLE=2").splitlines()[-1])
    assert estimate[estimate.index("scripts/starfish_workflow.py") + 1] == "estimate"
    assert [estimate[estimate.index(f) + 1] for f in ("--experiment-url", "--recipe", "--results-url", "--sample")] \
        == ["my exp.json", "r.py", "out", "2"]
    demo = shlex.split(make_dry_run(tree, "estimate").splitlines()[-1])
    assert demo[demo.index("--experiment-url") + 1] == "demo/experiment.json"


def test_make_run_resume_passes_a_typed_recipe_on_to_be_refused(tmp_path):
    """RECIPE= beside RESUME= reaches the launcher (which refuses it, naming why), never dropped;
    the RECIPE default alone is not passed."""
    tree = makefile_tree(tmp_path)
    typed = shlex.split(make_dry_run(tree, "run", "RESUME=r1", "RECIPE=fixed.py").splitlines()[-1])
    assert typed[typed.index("--resume") + 1] == "r1" and typed[typed.index("--recipe") + 1] == "fixed.py"
    plain = shlex.split(make_dry_run(tree, "run", "RESUME=r1").splitlines()[-1])
    assert "--recipe" not in plain and "--fovs" not in plain
