"""Issue 30, cases 2 and 5: what the merge refuses, ``--resume`` redoes, on disk and in S3.

Before, a resume judged a FOV done by its record alone (and in S3 by the table's size): a slot
holding another FOV's output, or a table corrupted in S3 after its worker wrote it, counted
as done, so the resume the merge advised did nothing and the same merge error came back.
"""

from __future__ import annotations

import json

import pytest

from starfish_batch.core import storage
from starfish_batch.core.records import FovRecord
from starfish_batch.demo.experiment import write_demo_experiment
from starfish_batch.demo.testing import synthetic_decoded_table, write_fov_table
from starfish_batch.launcher import runs
from starfish_batch.merge.job import merge_run
from tests.support.workflow import ISS_RECIPE, launch


def _write_outputs(manifest) -> None:
    """Every FOV of ``manifest`` done, as process-fov leaves it (small synthetic tables)."""
    for i, fov in enumerate(manifest.run_fovs):
        table = synthetic_decoded_table(4 + i, seed=i + 1, shape=(60, 80))
        with storage.staged_output(manifest.fov_url(fov, ".nc"), ".nc") as tmp:
            write_fov_table(table, tmp, fov, manifest.run_id, i)
            digest = storage.Digest.of_file(tmp)
        etag = storage.size_and_etag(manifest.fov_url(fov, ".nc"))[1] or ""
        record = FovRecord(fov=fov, index=i, run_id=manifest.run_id, recipe_sha256=manifest.recipe_sha256,
                           n_features=4 + i, nc_bytes=digest.size, nc_sha256=digest.sha256, nc_etag=etag)
        storage.write_text(manifest.fov_url(fov, ".json"), record.to_json())


@pytest.mark.parametrize("where", ["disk", "s3"])
def test_a_resume_redoes_a_copied_slot_and_a_table_corrupted_after_it_was_written(where, tmp_path, request):
    if where == "s3":
        request.getfixturevalue("moto_s3").create_bucket(Bucket="results")
        results = "s3://results/runs"
    else:
        results = str(tmp_path / "results")
    experiment = write_demo_experiment(tmp_path / "exp", fov_names=["A1", "B1", "C1"], shape=(64, 64), n_spots=8)
    manifest, _ = runs.new_run(str(experiment), str(ISS_RECIPE), results, run_id="copied")
    _write_outputs(manifest)
    table = bytearray(storage.read_bytes(manifest.fov_url("B1", ".nc")))
    table[-64:] = bytes(64)  # same size, other bytes: the merge refuses it (sha256)
    storage.write_bytes(manifest.fov_url("B1", ".nc"), bytes(table))
    for suffix in (".nc", ".json"):
        storage.write_bytes(manifest.fov_url("C1", suffix), storage.read_bytes(manifest.fov_url("A1", suffix)))

    refused: dict[str, str] = {}
    resumed, _ = runs.resume_run(results, "copied", refused=refused)
    assert resumed.fovs == ["B1", "C1"]
    assert list(refused) == ["C1"] and "holds FOV 'A1' (index 0)" in refused["C1"]


@pytest.fixture
def s3_run(s3_server, tmp_path):
    """A 2-FOV run launched with results in S3 (a moto server), both FOVs done (small tables
    written as process-fov writes them, to save the time of processing them) and merged."""
    env, client = s3_server
    experiment = write_demo_experiment(tmp_path / "exp", fov_names=["A1", "B1"], shape=(64, 64), n_spots=8)
    manifest, _ = runs.new_run(str(experiment), str(ISS_RECIPE), "s3://races/runs", run_id="s3run")
    _write_outputs(manifest)
    merge_run(manifest)
    return env, client


def _get(client, key: str) -> bytes:
    return client.get_object(Bucket="races", Key=f"runs/s3run/{key}")["Body"].read()


def test_the_launcher_in_s3_redoes_what_the_merge_refused_and_merges(s3_run):
    """The loop of case 5, end to end: the merge says "process the FOV again (--resume)", and
    the resume does, where it used to answer "0 of 2 FOVs left" and fail the same way."""
    env, client = s3_run
    table = bytearray(_get(client, "fovs/B1.nc"))
    table[-64:] = bytes(64)  # corrupted in place after its worker wrote it, same size
    client.put_object(Bucket="races", Key="runs/s3run/fovs/B1.nc", Body=bytes(table))
    client.delete_object(Bucket="races", Key="runs/s3run/merged_decoded_fovs.nc")  # as if before the merge

    resumed = launch("--resume", "s3run", "--results-url", "s3://races/runs", env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert "1 of 2 FOVs left" in resumed.stderr
    record = json.loads(_get(client, "fovs/B1.json"))
    assert (record["fov"], record["index"], record["run_id"]) == ("B1", 1, "s3run") and record["nc_etag"]
    assert storage.Digest.of_bytes(_get(client, "fovs/B1.nc")).sha256 == record["nc_sha256"]
    summary = json.loads(_get(client, "summary.json"))
    assert summary["n_fovs_merged"] == 2 and summary["missing_fovs"] == []
