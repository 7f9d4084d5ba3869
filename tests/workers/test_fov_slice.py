"""Packed children: one process-fov runs the FOVs of its array index (Manifest.fovs_per_job),
commits each as it finishes, records a failed FOV and goes on, and a retry skips what is done."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.core.fov_failure import FovFailure, failure_url, recorded_failures
from starfish_batch.core.manifest import Manifest
from starfish_batch.launcher.runs import new_run
from starfish_batch.process_fov import main as process_fov
from tests.support.workflow import EXPERIMENT_ORDER, FAILING_WRAPPER, recipe_with, write_experiment


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> Path:
    return write_experiment(tmp_path_factory.mktemp("experiment"))


def _child(manifest_url: str, index: int) -> int:
    return process_fov.main([], env={"RUN_MANIFEST_URL": manifest_url, "AWS_BATCH_JOB_ARRAY_INDEX": str(index)})


def _records(manifest: Manifest) -> dict[str, dict]:
    return {fov: json.loads(Path(manifest.fov_url(fov, ".json")).read_text()) for fov in manifest.fovs
            if Path(manifest.fov_url(fov, ".json")).exists()}


def test_manifest_without_fovs_per_job_is_one_per_index():
    data = {"schema_version": 1, "run_id": "old", "experiment_url": "/e.json", "recipe_url": "/r.py",
            "recipe_sha256": "0" * 64, "results_url": "/res", "fovs": ["a", "b", "c"]}
    old = Manifest.from_json(json.dumps(data))
    assert old.fovs_per_job == 1 and old.n_jobs == 3 and list(old.job_fovs(2)) == [2]
    assert "fovs_per_job" not in old.to_json()  # its sha256, carried by submitted jobs, is unchanged
    packed = Manifest.from_json(json.dumps({**data, "fovs_per_job": 2}))
    assert packed.n_jobs == 2 and list(packed.job_fovs(0)) == [0, 1] and list(packed.job_fovs(1)) == [2]
    assert json.loads(packed.to_json())["fovs_per_job"] == 2
    with pytest.raises(StarfishBatchError, match="array index 2 is out of range.*2 job"):
        packed.job_fovs(2)
    for bad in (0, -1, "2", 1.5, True):
        with pytest.raises(StarfishBatchError, match="fovs_per_job"):
            Manifest.from_json(json.dumps({**data, "fovs_per_job": bad}))


def test_packed_children_equal_one_per_child(experiment, tmp_path):
    from starfish import DecodedIntensityTable  # lazy: import starfish takes seconds

    recipe = recipe_with(tmp_path, "")
    one, one_url = new_run(str(experiment), str(recipe), str(tmp_path / "one"), run_id="one")
    packed, packed_url = new_run(str(experiment), str(recipe), str(tmp_path / "packed"), run_id="packed",
                                 fovs_per_job=3)
    assert packed.n_jobs == 2
    for index in range(one.n_jobs):
        assert _child(one_url, index) == 0
    for index in range(packed.n_jobs):
        assert _child(packed_url, index) == 0
    records = _records(packed)
    assert sorted(records) == sorted(EXPERIMENT_ORDER)
    assert [records[f]["index"] for f in packed.fovs] == list(range(len(packed.fovs)))
    for fov in packed.fovs:
        a = DecodedIntensityTable.open_netcdf(one.fov_url(fov, ".nc"))
        b = DecodedIntensityTable.open_netcdf(packed.fov_url(fov, ".nc"))
        assert a.equals(b) and a.sizes == b.sizes


def test_a_failed_fov_is_recorded_and_the_slice_goes_on_then_a_retry_redoes_only_it(
        experiment, tmp_path, monkeypatch, capsys):
    recipe = recipe_with(tmp_path, FAILING_WRAPPER)
    manifest, url = new_run(str(experiment), str(recipe), str(tmp_path / "res"), run_id="r", fovs_per_job=4)
    first, second = manifest.fovs[0], manifest.fovs[1]
    monkeypatch.setenv("FAIL_FOVS", first)
    # a recipe error is not something a retry fixes: the child ends 0, the failure is recorded
    assert _child(url, 0) == 0
    err = capsys.readouterr().err
    assert f"FOV {first}: recipe raised RuntimeError" in err and "3 of 4 FOV(s) done, 1 failed" in err
    assert sorted(_records(manifest)) == sorted(manifest.fovs[1:])
    failure = FovFailure.from_json(Path(failure_url(manifest, first)).read_text())
    assert (failure.fov, failure.index, failure.retryable, failure.out_of_memory) == (first, 0, False, False)
    assert list(recorded_failures(manifest)) == [first]

    done = Path(manifest.fov_url(second, ".nc"))
    before = (done.stat().st_mtime_ns, Path(manifest.fov_url(second, ".json")).read_text())
    monkeypatch.setenv("FAIL_FOVS", "")
    assert _child(url, 0) == 0  # the retry: only the failed FOV is computed again
    err = capsys.readouterr().err
    assert err.count("output exists for this recipe, skipping") == 3
    assert (done.stat().st_mtime_ns, Path(manifest.fov_url(second, ".json")).read_text()) == before
    assert sorted(_records(manifest)) == sorted(manifest.fovs)


def test_a_storage_fault_in_a_slice_exits_non_zero_for_a_retry(experiment, tmp_path, capsys):
    recipe = recipe_with(tmp_path, "")
    manifest, url = new_run(str(experiment), str(recipe), str(tmp_path / "res"), run_id="r", fovs_per_job=2)
    blocked = manifest.fovs[0]
    Path(manifest.fov_url(blocked, ".nc")).mkdir(parents=True)  # the table cannot be published there
    assert _child(url, 0) == 1
    err = capsys.readouterr().err
    assert f"error: FOV {blocked}: " in err and "1 a retry may fix" in err
    assert sorted(_records(manifest)) == [manifest.fovs[1]]  # the slice went on after the fault
    assert FovFailure.from_json(Path(failure_url(manifest, blocked)).read_text()).retryable


def test_a_packed_child_out_of_range_names_the_index(experiment, tmp_path, capsys):
    manifest, url = new_run(str(experiment), str(recipe_with(tmp_path, "")), str(tmp_path / "res"),
                            run_id="r", fovs_per_job=3)
    assert _child(url, 2) == 1
    assert "array index 2 is out of range: manifest of run r has 2 job(s) (4 FOVs, 3 per job)" in \
        capsys.readouterr().err
