"""The worker environment of the contract, the manifest, and CPU sizing."""

from __future__ import annotations

import json

import pytest

from starfish_batch.core import resources
from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.core.manifest import Manifest, check_run_id, new_run_id
from starfish_batch.process_fov.main import array_index, select_fov


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"AWS_BATCH_JOB_ARRAY_INDEX": "3"}, 3),
        ({"AWS_BATCH_JOB_ARRAY_INDEX": "3", "FOV_INDEX_OFFSET": "10000"}, 10003),
        ({"AWS_BATCH_JOB_ID": "0a1b-2c:7"}, 7),
        ({"AWS_BATCH_JOB_ID": "0a1b-2c:7", "FOV_INDEX_OFFSET": "5"}, 12),
        ({"AWS_BATCH_JOB_ID": "plain-job-id"}, 0),
        ({}, 0),
        ({"AWS_BATCH_JOB_ARRAY_INDEX": "2", "AWS_BATCH_JOB_ID": "x:9"}, 2),
    ],
)
def test_array_index(env, expected):
    assert array_index(env) == expected


@pytest.mark.parametrize(
    "env, message",
    [
        ({"AWS_BATCH_JOB_ARRAY_INDEX": "two"}, "AWS_BATCH_JOB_ARRAY_INDEX='two'"),
        ({"FOV_INDEX_OFFSET": "x"}, "FOV_INDEX_OFFSET='x'"),
        ({"AWS_BATCH_JOB_ARRAY_INDEX": "-1"}, "negative"),
    ],
)
def test_bad_array_index(env, message):
    with pytest.raises(StarfishBatchError, match=message):
        array_index(env)


def _manifest(**kw) -> Manifest:
    base = dict(run_id="r1", experiment_url="/e/experiment.json", recipe_url="/r/r1/recipe.py",
                recipe_sha256="0" * 64, results_url="/r", fovs=["A1", "B-2"])
    base.update(kw)
    return Manifest(**base)


def test_select_fov_out_of_range_names_index_and_count():
    m = _manifest()
    assert select_fov(m, 1) == "B-2"
    with pytest.raises(StarfishBatchError, match=r"array index 2 is out of range.*lists 2 FOVs"):
        select_fov(m, 2)


def test_manifest_round_trip_has_contract_keys(tmp_path):
    m = _manifest(results_url=str(tmp_path))
    url = m.save()
    data = json.loads((tmp_path / "r1" / "manifest.json").read_text())
    for key in ("schema_version", "run_id", "experiment_url", "recipe_url", "recipe_sha256",
                "results_url", "fovs", "created_at", "version"):
        assert key in data
    assert data["schema_version"] == 1 and "all_fovs" not in data
    assert Manifest.load(url) == m


@pytest.mark.parametrize("text, message", [
    ("{", "not valid JSON"),
    ("[]", "not a JSON object"),
    ('{"schema_version": 2}', "schema_version 2"),
    ('{"schema_version": 1, "run_id": "x"}', "lacks experiment_url"),
])
def test_bad_manifest(text, message):
    with pytest.raises(StarfishBatchError, match=message):
        Manifest.from_json(text, "m.json")


def test_run_ids():
    run_id = new_run_id()
    assert check_run_id(run_id) == run_id and len(run_id) <= 64
    assert new_run_id() != run_id
    for bad in ("Upper", "with space", "a" * 65, ""):
        with pytest.raises(StarfishBatchError, match="invalid run id"):
            check_run_id(bad)


def test_available_cpus_honours_cgroup_quota(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert resources.available_cpus(tmp_path) == min(2, resources.available_cpus(tmp_path / "none"))
    (tmp_path / "cpu.max").write_text("50000 100000\n")
    assert resources.available_cpus(tmp_path) == 1
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert resources.available_cpus(tmp_path) == resources.available_cpus(tmp_path / "none")
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("100000")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert resources.available_cpus(v1) == 1
