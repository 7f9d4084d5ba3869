"""Nothing escapes, nothing is mixed: hostile FOV names, swapped manifests, two launchers at once.

Each test is one attack or accident, tried the way it happens: real launcher and worker
processes on a real experiment, or the run-writing functions raced against each other.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from starfish_batch.core.contract import worker_env
from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.core.manifest import Manifest
from starfish_batch.demo.experiment import write_demo_experiment
from starfish_batch.demo.testing import write_fake_run
from starfish_batch.launcher import runs
from starfish_batch.launcher.claim import RunClaim
from starfish_batch.merge import job as merge_job
from starfish_batch.process_fov import main as worker
from tests.support.workflow import FAILING_WRAPPER, ISS_RECIPE, launch, recipe_with, snapshot

HOSTILE = ["../escape", ".hidden", "a/b", "Case", "case", "L" * 200]
SAFE_FILE = re.compile(r"[A-Za-z0-9_~][A-Za-z0-9_.~-]*")


def _experiment(root: Path, names: list[str], seed: int = 3) -> Path:
    return write_demo_experiment(root, fov_names=names, shape=(64, 64), n_spots=8, seed=seed)


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """A local run over FOVs named to escape, hide, nest, collide by case and overflow."""
    root = tmp_path_factory.mktemp("hostile")
    experiment = _experiment(root / "exp", HOSTILE)
    results = root / "area" / "results"
    done = launch("--experiment-url", experiment, "--recipe", ISS_RECIPE, "--results-url", results,
                  "--run-id", "hostile", "--workers", "2")
    return root, results, done


def test_hostile_fov_names_stay_inside_the_run_and_come_back_by_name(hostile_run):
    root, results, done = hostile_run
    assert done.returncode == 0, done.stderr[-3000:]
    run = results / "hostile"
    outside = [p for p in (root / "area").rglob("*") if p.is_file() and run not in p.parents]
    assert outside == []  # ../escape wrote nothing beside the results folder
    fovs = sorted(p.name for p in (run / "fovs").iterdir())
    assert len(fovs) == 2 * len(HOSTILE)  # one .nc and one .json each: none hidden, none shared
    assert all(SAFE_FILE.fullmatch(name) for name in fovs), fovs
    logs = sorted(p.name for p in (run / "logs").iterdir())
    assert len(logs) == len(HOSTILE) and all(SAFE_FILE.fullmatch(n) for n in logs)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["missing_fovs"] == [] and summary["n_fovs_merged"] == len(HOSTILE)
    from starfish import DecodedIntensityTable  # lazy: import starfish takes seconds

    merged = DecodedIntensityTable.open_netcdf(str(run / "merged_decoded_fovs.nc"))
    assert set(merged.coords["fov"].values) <= set(HOSTILE)  # the tables keep the real names
    for fov in HOSTILE:
        record = json.loads(Path(Manifest.load(str(run / "manifest.json")).fov_url(fov, ".json")).read_text())
        assert record["fov"] == fov


def test_resuming_a_merged_run_rewrites_nothing(hostile_run):
    _, results, done = hostile_run
    assert done.returncode == 0
    before = snapshot(results / "hostile")
    again = launch("--resume", "hostile", "--results-url", results)
    assert again.returncode == 0, again.stderr
    assert "run hostile is complete and merged" in again.stderr
    assert snapshot(results / "hostile") == before


def test_recipe_or_experiment_beside_resume_is_refused_not_ignored(hostile_run, tmp_path):
    _, results, _ = hostile_run
    other = recipe_with(tmp_path, "\n# fixed\n")
    before = snapshot(results / "hostile")
    refused = launch("--resume", "hostile", "--recipe", other, "--results-url", results)
    assert refused.returncode == 1
    assert "--recipe cannot be used with --resume" in refused.stderr
    assert snapshot(results / "hostile") == before


def test_a_ground_truth_typo_stops_the_run_before_it_starts(tmp_path):
    experiment = _experiment(tmp_path / "exp", ["A1"])
    results = tmp_path / "results"
    bad = launch("--experiment-url", experiment, "--recipe", ISS_RECIPE, "--results-url", results,
                 "--ground-truth", tmp_path / "ground_truht.csv")
    assert bad.returncode == 1
    assert "--ground-truth" in bad.stderr and "ground_truht.csv" in bad.stderr
    assert not results.exists()


def _new_run(tmp_path: Path, names: list[str], recipe: Path, run_id: str, **kw):
    experiment = tmp_path / "exp" / "experiment.json"
    if not experiment.exists():
        _experiment(tmp_path / "exp", names)
    return runs.new_run(str(experiment), str(recipe), str(tmp_path / "results"), run_id=run_id, **kw)


def test_a_swapped_manifest_is_refused_by_the_worker_and_the_merge(tmp_path, capsys):
    manifest, url = _new_run(tmp_path, ["A1", "B1"], ISS_RECIPE, "swap")
    env = {**worker_env(url, manifest.sha256), "AWS_BATCH_JOB_ARRAY_INDEX": "0"}
    # someone with write access to the results swaps the recipe and the manifest that pins it
    marker = tmp_path / "evil-ran"
    evil = f"open({str(marker)!r}, 'w').close()\ndef process_fov(fov, codebook):\n    raise SystemExit\n"
    evil_url = str(tmp_path / "results" / "swap" / "recipe.py")
    Path(evil_url).write_text(evil)
    data = json.loads(Path(url).read_text())
    data["recipe_sha256"] = hashlib.sha256(evil.encode()).hexdigest()
    Path(url).write_text(json.dumps(data, indent=2))

    assert worker.main([], env=env) == 1
    assert "changed after the run was submitted" in capsys.readouterr().err
    assert not marker.exists()
    assert merge_job.main([], env=env) == 1
    assert "changed after the run was submitted" in capsys.readouterr().err


def test_the_merge_refuses_a_fov_made_by_another_recipe(tmp_path, capsys):
    manifest = write_fake_run(str(tmp_path), {"A1": 5, "B1": 4})
    record_path = Path(manifest.fov_url("B1", ".json"))
    record = json.loads(record_path.read_text())
    record["recipe_sha256"] = "f" * 64
    record_path.write_text(json.dumps(record))
    url = str(tmp_path / manifest.run_id / "manifest.json")
    assert merge_job.main([], env={**worker_env(url, manifest.sha256)}) == 1
    err = capsys.readouterr().err
    assert "FOV B1:" in err and "made by another recipe" in err
    assert not Path(manifest.merged_url).exists()


def test_a_worker_refuses_an_experiment_changed_since_the_run_started(tmp_path, capsys):
    manifest, url = _new_run(tmp_path, ["A1", "B1"], ISS_RECIPE, "drift")
    shutil.rmtree(tmp_path / "exp")
    _experiment(tmp_path / "exp", ["A1", "B1"], seed=11)  # regenerated: other images, other tile sets
    env = {**worker_env(url, manifest.sha256), "AWS_BATCH_JOB_ARRAY_INDEX": "0"}
    assert worker.main([], env=env) == 1
    err = capsys.readouterr().err
    assert "changed since the run started" in err
    assert not Path(manifest.fov_url("A1")).exists()


def test_a_resume_refuses_an_experiment_changed_since_the_run_started(tmp_path):
    experiment = _experiment(tmp_path / "exp", ["A1", "B1"])
    results = tmp_path / "results"
    recipe = recipe_with(tmp_path, FAILING_WRAPPER)
    first = launch("--experiment-url", experiment, "--recipe", recipe, "--results-url", results,
                   "--run-id", "regen", env={"FAIL_FOVS": "B1"})
    assert first.returncode == 1
    before = snapshot(results / "regen")
    shutil.rmtree(tmp_path / "exp")
    _experiment(tmp_path / "exp", ["A1", "B1"], seed=11)
    resumed = launch("--resume", "regen", "--results-url", results)
    assert resumed.returncode == 1
    assert "cannot resume run regen" in resumed.stderr and "changed since the run started" in resumed.stderr
    assert snapshot(results / "regen") == before  # no resume manifest, nothing merged


def test_two_launchers_starting_one_run_id_cannot_both_start(tmp_path):
    other = recipe_with(tmp_path, "\n# the other scientist's recipe\n", name="other.py")
    outcomes = []

    def second_launcher_meanwhile(manifest):
        # launcher B runs all its checks and writes while launcher A sits between its own checks and writes
        outcomes.append(_new_run(tmp_path, ["A1"], other, "same"))

    with pytest.raises(StarfishBatchError, match="run same (already exists|is in use)"):
        _new_run(tmp_path, ["A1"], ISS_RECIPE, "same", preflight=second_launcher_meanwhile)
    manifest, _ = outcomes[0]
    stored = (tmp_path / "results" / "same" / "recipe.py").read_bytes()
    other_sha = hashlib.sha256(other.read_bytes()).hexdigest()
    assert hashlib.sha256(stored).hexdigest() == manifest.recipe_sha256 == other_sha


def test_two_resumes_of_one_run_cannot_both_start(tmp_path):
    manifest, _ = _new_run(tmp_path, ["A1", "B1"], ISS_RECIPE, "twice")
    results = str(tmp_path / "results")
    second = []

    def another_resume_meanwhile(_):
        with RunClaim() as claim:
            second.append(runs.resume_run(results, "twice", claim=claim))

    with RunClaim() as claim, pytest.raises(StarfishBatchError, match="run twice is in use by another launcher"):
        runs.resume_run(results, "twice", preflight=another_resume_meanwhile, claim=claim)
    assert second == []
    assert not any(p.name.startswith("manifest-resume") for p in (tmp_path / "results" / "twice").iterdir())


def test_a_claim_left_by_a_dead_launcher_is_taken_over(tmp_path):
    manifest, _ = _new_run(tmp_path, ["A1"], ISS_RECIPE, "stale")
    dead = subprocess.Popen(["true"])
    dead.wait()
    lock = tmp_path / "results" / "stale" / "launcher.lock"
    lock.write_text(json.dumps({"host": os.uname().nodename, "pid": dead.pid, "started_at": "x"}))
    with RunClaim() as claim:
        runs.resume_run(str(tmp_path / "results"), "stale", claim=claim)
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert not lock.exists()

