"""The scientist's loop, fast parts: advice that fits the cause, partial runs, errors that name the
user's thing, one vocabulary in every output, paths that survive a moved results folder."""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import shlex
import shutil
import subprocess
import sys
from argparse import Namespace

import numpy as np
import pandas as pd
import pytest

from starfish_batch.core import storage
from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.core.manifest import Manifest
from starfish_batch.core.recipe import compile_recipe
from starfish_batch.core.recipe_images import missing_image_message
from starfish_batch.demo.testing import synthetic_decoded_table, with_cells, write_fake_run
from starfish_batch.launcher import cli, console
from starfish_batch.launcher.executors.local import LocalExecutor
from starfish_batch.launcher.outcome import Failure
from starfish_batch.launcher.runs import new_run, progress, resume_run
from starfish_batch.merge import job as merge
from tests.support import REPO_ROOT
from tests.support.shell import make_dry_run, typed
from tests.support.workflow import ISS_RECIPE, write_experiment


def _failure(fov: str, index: int, recipe: bool = True) -> Failure:
    cause = "recipe raised KeyError: 'dots'" if recipe else "cannot read tile s3://x/y.tiff: timed out"
    return Failure(fov=fov, index=index, reason=f"process-fov: error: FOV {fov}: {cause}", exit_code=1)


def _args(**kw) -> Namespace:
    return Namespace(invocation="python scripts/starfish_workflow.py", executor="local", recipe=None,
                     tf_outputs=None, tf_dir=None, **kw)


def _manifest(tmp_path) -> Manifest:
    return Manifest(run_id="r1", experiment_url="/data/my exp/experiment.json",
                    recipe_url=f"{tmp_path}/results/r1/recipe.py", recipe_sha256="0" * 64,
                    results_url=f"{tmp_path}/results", fovs=["A1", "b_2", "C-3"],
                    recipe_source="/home/me/my recipe.py")


@pytest.mark.parametrize("via_make", [False, True])
def test_after_a_recipe_error_the_advice_is_a_new_run_tried_on_the_failed_fovs_first(tmp_path, monkeypatch,
                                                                                      via_make):
    monkeypatch.setenv(cli.VIA_MAKE_VAR, "1" if via_make else "0")
    manifest = _manifest(tmp_path)
    steps = cli.next_step_commands([_failure("A1", 0), _failure("b_2", 1)], manifest, _args())
    commands = [c for _, c in steps]
    assert len(commands) == 2 and not any("RESUME=" in c or "--resume" in c for c in commands)
    tried, whole = commands
    words = shlex.split(tried)
    if via_make:
        assert "FOVS=A1,b_2" in words and "RECIPE=/home/me/my recipe.py" in words
    else:
        assert words[words.index("--fovs") + 1] == "A1,b_2"
        assert words[words.index("--recipe") + 1] == "/home/me/my recipe.py"  # the user's file, not the copy
    assert "FOVS" not in whole and "--fovs" not in whole
    # a resume only for causes outside the recipe
    mixed = cli.next_step_commands([_failure("A1", 0), _failure("C-3", 2, recipe=False)], manifest, _args())
    assert any(("RESUME=" in c) if via_make else ("--resume" in c) for _, c in mixed)
    only_data = cli.next_step_commands([_failure("C-3", 2, recipe=False)], manifest, _args())
    assert len(only_data) == 1 and ("RESUME=r1" if via_make else "--resume r1") in only_data[0][1]


def test_make_run_resume_with_a_recipe_refuses_as_the_script_does(tmp_path):
    results = shlex.quote(str(tmp_path / "results"))
    made = typed(f"make run RESUME=r1 RECIPE=fixed.py RESULTS={results}")
    assert made.returncode != 0
    assert "RECIPE= cannot be used with RESUME=: a resume reruns run r1's own recipe" in made.stderr
    script = subprocess.run([sys.executable, "scripts/starfish_workflow.py", "--resume", "r1", "--recipe",
                             "fixed.py", "--results-url", str(tmp_path / "results")], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert "--recipe cannot be used with --resume: a resume reruns run r1's own recipe" in script.stderr
    assert not (tmp_path / "results").exists()


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    return write_experiment(tmp_path_factory.mktemp("exp"))


def _new_run(tmp_path, experiment, recipe_text: str | None = None, **kw):
    tmp_path.mkdir(parents=True, exist_ok=True)
    recipe = tmp_path / "recipe.py"
    recipe.write_text(recipe_text or ISS_RECIPE.read_text())
    return new_run(str(experiment), str(recipe), str(tmp_path / "results"), run_id="p1", **kw)


def test_a_partial_run_holds_the_fovs_named_and_is_marked_partial(tmp_path, experiment):
    manifest, url = _new_run(tmp_path, experiment, only=["C-3", "A1"])
    assert manifest.fovs == ["A1", "C-3"] and manifest.subset_of == 4
    state = progress(Manifest.load(url))
    assert state["partial"] is True and state["experiment_fovs"] == 4 and state["fovs"] == 2
    with pytest.raises(StarfishBatchError, match=r"--fovs: experiment .* has no FOV named 'Z9'; its FOVs are A1, C-3"):
        _new_run(tmp_path / "again", experiment, only=["Z9"])
    sampled, _ = _new_run(tmp_path / "sample", experiment, sample=2)
    assert len(sampled.fovs) == 2 and sampled.subset_of == 4


def test_a_recipe_asking_for_an_image_the_experiment_lacks_is_refused_before_the_run(tmp_path, experiment):
    text = ISS_RECIPE.read_text().replace('get_image("dots")', 'get_image("anchor_dots")')
    with pytest.raises(StarfishBatchError) as err:
        _new_run(tmp_path, experiment, text)
    message = str(err.value)
    assert "asks for image 'anchor_dots'" in message
    assert "has the images primary, dots, nuclei" in message or all(
        name in message for name in ("primary", "dots", "nuclei"))
    assert not (tmp_path / "results" / "p1").exists()


def test_the_worker_names_the_experiments_images_for_an_image_computed_at_run_time():
    class Fov:
        image_types = {"primary", "anchor_dots", "nuclei"}

    assert missing_image_message(KeyError("dots"), Fov()) == (
        "the recipe asked for image 'dots'; the experiment's images are anchor_dots, nuclei, primary")
    assert missing_image_message(KeyError("nuclei"), Fov()) is None  # another dictionary's KeyError


def test_a_launcher_without_starfish_names_the_interpreter_not_the_recipe(monkeypatch):
    monkeypatch.setitem(sys.modules, "starfish", None)  # `import starfish` fails as without the package
    with pytest.raises(StarfishBatchError) as err:
        compile_recipe(b"import starfish\n\ndef process_fov(fov, codebook):\n    pass\n", "my_recipe.py")
    assert f"starfish is not installed for the Python running this ({sys.executable})" in str(err.value)
    assert ".venv/bin/python" in str(err.value)


def test_a_results_folder_that_cannot_be_written_is_named_not_the_probe(tmp_path):
    (tmp_path / "a file").write_text("x")
    results = str(tmp_path / "a file" / "results")
    with pytest.raises(StarfishBatchError) as err:
        storage.check_writable(results)
    assert str(err.value).startswith(f"cannot write in the results folder {results}: ")
    assert "write-check" not in str(err.value)


def _cells_run(results: str) -> tuple[Manifest, merge.MergeResult]:
    tables = {fov: with_cells(synthetic_decoded_table(n, seed=i, shape=(60, 80), origin_um=(i * 10.0, 0.0)),
                              3, seed=i)
              for i, (fov, n) in enumerate({"A1": 40, "B 2": 25}.items())}
    for fov, table in tables.items():  # starfish's placeholder for a feature that did not decode
        targets = table["target"].values.astype(object)
        targets[::5] = "nan"
        tables[fov] = table.assign_coords(target=("features", targets.astype(str)))
    manifest = write_fake_run(results, {f: 0 for f in tables}, tables=tables)
    return manifest, merge.merge_run(manifest)


def test_parquet_and_csv_have_one_vocabulary(tmp_path):
    manifest, result = _cells_run(str(tmp_path / "results"))
    with storage.local_copy(result.outputs["transcripts"]) as path:
        parquet = pd.read_parquet(path)
    csv = pd.read_csv(io.BytesIO(gzip.decompress(storage.read_bytes(result.outputs["spots"]))))
    assert list(parquet.columns) == list(csv.columns)
    assert {"xc", "yc", "x", "y", "intensity", "max_intensity", "cell_id"} <= set(csv.columns)
    summary = json.loads(storage.read_text(result.outputs["summary"]))
    assert parquet["target"].isna().sum() == csv["target"].isna().sum() == summary["n_features_without_target"] > 0
    assert "nan" not in set(parquet["target"].dropna().astype(str)) | set(csv["target"].dropna())
    for column in ("xc", "yc", "x", "y", "intensity", "max_intensity"):
        want = parquet[column].to_numpy(float)  # the CSV keeps 7 significant digits of the column's largest
        np.testing.assert_allclose(csv[column].to_numpy(float), want, rtol=0, atol=1e-6 * np.abs(want).max(),
                                   err_msg=column)
    assert csv["cell_id"].fillna("").tolist() == parquet["cell_id"].astype(object).fillna("").tolist()
    import anndata  # lazy: anndata ~4 s

    cells = anndata.read_h5ad(result.outputs["cells"])
    assert set(cells.obs["cell_id"]) == set(csv["cell_id"].dropna())  # the same names to join on
    assert {"xc", "yc", "label"} <= set(cells.obs.columns)


def test_a_moved_results_folder_keeps_working(tmp_path, capsys):
    manifest, result = _cells_run(str(tmp_path / "results"))
    run_root = manifest.run_root
    for name in ("summary.json", "manifest.json"):
        assert run_root not in (tmp_path / "results" / "run-1" / name).read_text(), name
    moved = tmp_path / "elsewhere" / "shared results"
    moved.parent.mkdir()
    shutil.move(str(tmp_path / "results"), str(moved))
    loaded = Manifest.load(str(moved / "run-1" / "manifest.json"))
    assert loaded.run_root == str(moved / "run-1")
    assert cli.main(["status", "run-1", "--results-url", str(moved)]) == 0
    state = json.loads(capsys.readouterr().out)
    assert state["run_root"] == str(moved / "run-1") and state["merged"] and not state["partial"]


def test_status_of_a_run_merged_with_fovs_missing_says_it_is_partial(tmp_path, capsys):
    manifest = write_fake_run(str(tmp_path / "results"), {"A1": 10, "B2": 5, "C3": 7})
    (tmp_path / "results" / "run-1" / "fovs" / f"{manifest.keys['B2']}.nc").unlink()
    merge.merge_run(manifest, allow_partial=True)
    assert cli.main(["status", "run-1", "--results-url", str(tmp_path / "results")]) == 0
    state = json.loads(capsys.readouterr().out)
    assert state["merged"] is True and state["partial"] is True and state["merged_fovs_missing"] == ["B2"]


def test_the_closing_summary_counts_what_was_processed_and_quotes_paths(tmp_path, capsys, monkeypatch):
    manifest, _ = _cells_run(str(tmp_path / "my results"))
    monkeypatch.setattr(console, "_importable", lambda module: module != "anndata")
    console.print_summary(manifest, 3.0, processed=1)
    out = capsys.readouterr().out
    assert "run run-1: 1 FOVs processed in 3.0 s, 2 in the run" in out
    assert f"    {shlex.quote(manifest.run_root + '/cells.h5ad')}" in out
    assert f"{shlex.quote(sys.executable)} -m pip install 'anndata>=0.10,<0.13'" in out


def test_a_resumes_failure_names_the_fovs_place_in_the_run_and_what_is_kept(tmp_path):
    manifest = write_fake_run(str(tmp_path / "results"), {"A1": 10, "B2": 5, "C3": 7})
    resume = dataclasses.replace(manifest, fovs=["C3"], all_fovs=list(manifest.run_fovs))
    url = str(tmp_path / "results" / "run-1" / "manifest-resume-1.json")
    resume.save(url)
    (tmp_path / "results" / "run-1" / "manifest-resume-1.json").write_text(resume.to_json() + " ")  # refused
    outcome = LocalExecutor(workers=1, progress=False).process(resume, url)
    [failure] = outcome.failed
    assert failure.headline().startswith("FOV C3 (index 2) failed")  # its place in the run, not the resume
    assert "the outputs of the 3 FOV(s) of the run that succeeded are kept" in cli.kept_text(resume)


def test_a_moved_run_resumes_where_it_is_now_with_its_own_recipe(tmp_path, experiment):
    manifest, _ = _new_run(tmp_path, experiment)
    assert json.loads((tmp_path / "results" / "p1" / "manifest.json").read_text())["recipe_url"] == "recipe.py"
    moved = tmp_path / "moved" / "results 2"
    moved.parent.mkdir()
    shutil.move(str(tmp_path / "results"), str(moved))
    resumed, url = resume_run(str(moved), "p1")
    assert resumed.run_root == str(moved / "p1") and resumed.recipe_url == str(moved / "p1" / "recipe.py")
    assert url.startswith(str(moved / "p1")) and len(resumed.fovs) == 4
    assert Manifest.load(url).recipe_url == resumed.recipe_url


def test_a_failed_estimate_prints_the_estimate_to_start_again(tmp_path, monkeypatch):
    manifest = _manifest(tmp_path)
    args = _args(sample=2)
    words = shlex.split(cli.estimate_hint(manifest, args))
    assert words[2] == "estimate" and words[words.index("--recipe") + 1] == "/home/me/my recipe.py"
    monkeypatch.setenv(cli.VIA_MAKE_VAR, "1")
    printed = cli.estimate_hint(manifest, args)
    dry = make_dry_run(REPO_ROOT, *shlex.split(printed)[1:])
    launched = shlex.split(dry.splitlines()[-1])
    assert launched[launched.index("scripts/starfish_workflow.py") + 1] == "estimate"
    assert [launched[launched.index(f) + 1] for f in ("--experiment-url", "--recipe", "--sample")] == [
        "/data/my exp/experiment.json", "/home/me/my recipe.py", "2"]


def test_a_partial_run_is_scored_against_its_own_fovs_true_spots(tmp_path, capsys):
    manifest, result = _cells_run(str(tmp_path / "results"))
    spots = pd.read_csv(io.BytesIO(gzip.decompress(storage.read_bytes(result.outputs["spots"]))))
    truth = spots.loc[spots["target"].notna() & spots["passes_thresholds"], ["fov", "target", "x", "y"]]
    other = truth.head(7).assign(fov="not in this run")  # a FOV of the experiment this run left out
    pd.concat([truth, other]).to_csv(tmp_path / "truth.csv", index=False)
    manifest.subset_of = 3
    console.print_summary(manifest, 1.0, str(tmp_path / "truth.csv"))
    out = capsys.readouterr().out
    assert "partial: 2 of the experiment's 3 FOVs" in out
    assert f"recall 1.000, precision 1.000 ({len(truth)} of {len(truth)} true spots" in out
