"""Bad input to the workers and the launcher: one clear line naming the fault, exit 1,
and nothing already written is lost."""

from __future__ import annotations

import hashlib
import re
import shutil

import pytest

from starfish_batch.core.manifest import Manifest
from starfish_batch.launcher import cli
from starfish_batch.merge import job as merge
from starfish_batch.process_fov import main as process_fov
from tests.support.workflow import FOV_NAMES, ISS_RECIPE, snapshot, write_experiment


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    return write_experiment(tmp_path_factory.mktemp("experiment"))


def make_run(tmp_path, experiment, recipe_source: bytes | None = None) -> tuple[Manifest, str]:
    """A run folder as the launcher writes it, without starting any worker."""
    recipe_source = ISS_RECIPE.read_bytes() if recipe_source is None else recipe_source
    results = tmp_path / "results"
    manifest = Manifest(
        run_id="r1", experiment_url=str(experiment), recipe_url=str(results / "r1" / "recipe.py"),
        recipe_sha256=hashlib.sha256(recipe_source).hexdigest(), results_url=str(results),
        fovs=list(FOV_NAMES),
    )
    (results / "r1").mkdir(parents=True)
    (results / "r1" / "recipe.py").write_bytes(recipe_source)
    return manifest, manifest.save()


def run_worker(manifest_url: str, index: int, capsys) -> tuple[int, str]:
    code = process_fov.main([], env={"RUN_MANIFEST_URL": manifest_url,
                                     "AWS_BATCH_JOB_ARRAY_INDEX": str(index)})
    return code, capsys.readouterr().err


def last_line(err: str) -> str:
    return err.strip().splitlines()[-1]


@pytest.fixture
def run_with_one_output(tmp_path, experiment, capsys):
    """A run whose first FOV is done: every failure below must leave its output alone."""
    manifest, url = make_run(tmp_path, experiment)
    code, _ = run_worker(url, 0, capsys)
    assert code == 0
    root = tmp_path / "results" / "r1"
    return manifest, url, root, snapshot(root)


def test_worker_skips_a_fov_already_done(run_with_one_output, capsys):
    manifest, url, root, before = run_with_one_output
    code, err = run_worker(url, 0, capsys)
    assert code == 0 and "output exists for this recipe, skipping" in err
    assert snapshot(root) == before


@pytest.mark.parametrize("suffix, message", [
    ("\n\ndef process_fov(fov, codebook):\n    raise ValueError('bad threshold')\n",
     r"process-fov: error: FOV b_2: recipe raised ValueError: bad threshold"),
    ("\n\ndef process_fov(fov, codebook):\n    return [1, 2]\n",
     r"process-fov: error: FOV b_2: process_fov returned builtins.list, expected a starfish "
     r"DecodedIntensityTable"),
    ("\n\ndef process_fov(fov, codebook)\n    return 1\n",
     r"process-fov: error: FOV b_2: recipe .*recipe.py has a syntax error at line \d+"),
    ("\n\ndel process_fov\n",
     r"process-fov: error: FOV b_2: recipe .*recipe.py does not define process_fov"),
])
def test_bad_recipe_in_worker(tmp_path, experiment, capsys, suffix, message):
    source = ISS_RECIPE.read_bytes() + suffix.encode()
    manifest, url = make_run(tmp_path, experiment, source)
    code, err = run_worker(url, 1, capsys)
    assert code == 1

    assert re.match(message, last_line(err)), last_line(err)
    assert not (tmp_path / "results" / "r1" / "fovs" / "b_2.nc").exists()


def test_raising_recipe_keeps_its_traceback_in_the_log(tmp_path, experiment, capsys):
    source = ISS_RECIPE.read_bytes() + b"\n\ndef process_fov(fov, codebook):\n    1 / 0\n"
    _, url = make_run(tmp_path, experiment, source)
    code, err = run_worker(url, 0, capsys)
    assert code == 1
    assert "Traceback" in err and "1 / 0" in err
    assert last_line(err) == "process-fov: error: FOV A1: recipe raised ZeroDivisionError: division by zero"


def test_recipe_changed_after_manifest(run_with_one_output, capsys):
    manifest, url, root, before = run_with_one_output
    (root / "recipe.py").write_bytes(ISS_RECIPE.read_bytes() + b"# tweaked\n")
    before["recipe.py"] = (root / "recipe.py").read_bytes()
    code, err = run_worker(url, 1, capsys)
    assert code == 1
    assert "FOV b_2: recipe" in last_line(err) and "changed since the run started" in last_line(err)
    assert snapshot(root) == before


def test_array_index_out_of_range(run_with_one_output, capsys):
    _, url, root, before = run_with_one_output
    code, err = run_worker(url, 4, capsys)
    assert code == 1
    assert last_line(err) == ("process-fov: error: array index 4 is out of range: manifest of run r1 "
                              "lists 4 FOVs (0 to 3)")
    assert snapshot(root) == before


def test_missing_manifest_variable_and_file(tmp_path, capsys):
    assert process_fov.main([], env={}) == 1
    assert "RUN_MANIFEST_URL is not set" in last_line(capsys.readouterr().err)
    assert process_fov.main([], env={"RUN_MANIFEST_URL": str(tmp_path / "nope.json")}) == 1
    assert f"cannot read {tmp_path / 'nope.json'}" in last_line(capsys.readouterr().err)


@pytest.mark.parametrize("damage, message", [
    ("delete", r"cannot open experiment .*experiment.json"),
    ("garbage", r"cannot open experiment .*experiment.json: JSONDecodeError"),
])
def test_missing_or_malformed_experiment_in_worker(tmp_path, experiment, capsys, damage, message):
    copy = tmp_path / "exp"
    shutil.copytree(experiment.parent, copy)
    manifest, url = make_run(tmp_path, copy / "experiment.json")
    if damage == "delete":
        (copy / "experiment.json").unlink()
    else:
        (copy / "experiment.json").write_text("{ not json")
    code, err = run_worker(url, 0, capsys)
    assert code == 1

    assert re.search(r"process-fov: error: FOV A1: " + message, last_line(err)), last_line(err)


def test_results_not_writable_in_worker(tmp_path, experiment, capsys):
    manifest, url = make_run(tmp_path, experiment)
    fovs_dir = tmp_path / "results" / "r1" / "fovs"
    fovs_dir.parent.mkdir(parents=True, exist_ok=True)
    fovs_dir.write_text("a file where the fovs folder should be")
    code, err = run_worker(url, 0, capsys)
    assert code == 1
    assert "cannot write" in last_line(err) and "A1.nc" in last_line(err)
    assert fovs_dir.read_text() == "a file where the fovs folder should be"


def test_merge_with_missing_fov_outputs(run_with_one_output, capsys):
    _, url, root, before = run_with_one_output

    code = merge.main(["--manifest-url", url])
    err = capsys.readouterr().err
    assert code != 0
    assert "b_2" in last_line(err) and "C-3" in last_line(err) and "well7.site1" in last_line(err)
    assert "A1" not in last_line(err).split("missing", 1)[-1]
    assert snapshot(root) == before


# --- the launcher: every check happens before anything is written -------------------------

def launcher_error(capsys, *args: str) -> str:
    code = cli.main(["--quiet", *args])
    err = capsys.readouterr().err
    assert code == 1, err
    return last_line(err)


def test_launcher_missing_experiment(tmp_path, capsys):
    line = launcher_error(capsys, "--experiment-url", str(tmp_path / "none" / "experiment.json"),
                          "--recipe", str(ISS_RECIPE), "--results-url", str(tmp_path / "res"))
    assert line.startswith("starfish_workflow.py: error: cannot open experiment ")
    assert "none/experiment.json" in line
    assert not (tmp_path / "res").exists()


def test_launcher_malformed_experiment(tmp_path, experiment, capsys):
    copy = tmp_path / "exp"
    shutil.copytree(experiment.parent, copy)
    (copy / "experiment.json").write_text('{"version": "5.0.0"}')
    line = launcher_error(capsys, "--experiment-url", str(copy / "experiment.json"),
                          "--recipe", str(ISS_RECIPE), "--results-url", str(tmp_path / "res"))
    assert "cannot open experiment" in line and str(copy / "experiment.json") in line
    assert not (tmp_path / "res").exists()


@pytest.mark.parametrize("source, message", [
    (None, r"recipe .*missing.py cannot be read"),
    ("def process_fov(fov, codebook):\n  return (\n", r"recipe .*recipe.py has a syntax error at line 2"),
    ("def make(fov, codebook):\n    pass\n", r"recipe .*recipe.py does not define process_fov"),
])
def test_launcher_bad_recipe(tmp_path, experiment, capsys, source, message):
    recipe = tmp_path / ("missing.py" if source is None else "recipe.py")
    if source is not None:
        recipe.write_text(source)
    line = launcher_error(capsys, "--experiment-url", str(experiment), "--recipe", str(recipe),
                          "--results-url", str(tmp_path / "res"))
    assert re.search(message, line), line
    assert not (tmp_path / "res").exists()


def test_launcher_results_not_writable(tmp_path, experiment, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    line = launcher_error(capsys, "--experiment-url", str(experiment), "--recipe", str(ISS_RECIPE),
                          "--results-url", str(blocker / "results"))
    assert "cannot write" in line and str(blocker / "results") in line
    assert blocker.read_text() == "not a folder"


def test_launcher_num_fovs_is_checked(tmp_path, experiment, capsys):
    line = launcher_error(capsys, "--experiment-url", str(experiment), "--recipe-location",
                          str(ISS_RECIPE), "--results-location", str(tmp_path / "res"),
                          "--num-fovs", "3")
    assert "--num-fovs 3 disagrees with experiment" in line and "has 4 FOVs" in line
    assert not (tmp_path / "res").exists()


def test_launcher_refuses_to_overwrite_a_run(tmp_path, experiment, capsys):
    manifest, url = make_run(tmp_path, experiment)
    before = snapshot(tmp_path / "results")
    line = launcher_error(capsys, "--experiment-url", str(experiment), "--recipe", str(ISS_RECIPE),
                          "--results-url", str(tmp_path / "results"), "--run-id", "r1")
    assert "run r1 already exists" in line and "--resume r1" in line
    assert snapshot(tmp_path / "results") == before


def test_launcher_missing_arguments(capsys):
    line = launcher_error(capsys, "--recipe", "x.py")
    assert line == ("starfish_workflow.py: error: missing --experiment-url, --results-url "
                    "(see starfish_workflow.py run --help)")
