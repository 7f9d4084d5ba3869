"""Issue 30, case 2: one FOV's output copied into another FOV's slot (or from another run).

Before, the merge checked each table against its record's digest and the recipe's, never
that the record and the table belong to the FOV, index and run of their slot: A1 was merged
twice, A2 was missing, and the merge exited 0. Now the merge, ``status`` and ``--resume`` refuse
such a slot, in one line naming the slot and what it holds, and the FOV counts as not done.
Disk and S3 (in-process moto) alike.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from starfish_batch.core import storage
from starfish_batch.core.contract import worker_env
from starfish_batch.demo.testing import write_fake_run
from starfish_batch.launcher import runs
from starfish_batch.merge import job as merge_job

FOVS = {"A1": 7, "A2": 5, "A3": 3}


def _copy(src: str, dest: str) -> None:
    storage.write_bytes(dest, storage.read_bytes(src))


def _merge(manifest, capsys) -> tuple[int, str]:
    url = storage.join(manifest.run_root, "manifest.json")
    code = merge_job.main([], env=worker_env(url, manifest.sha256))
    return code, capsys.readouterr().err


@pytest.mark.parametrize("where", ["disk", "s3"])
def test_a_fov_output_copied_into_another_slot_is_refused_by_merge_status_and_resume(where, tmp_path, capsys,
                                                                                    request):
    if where == "s3":
        request.getfixturevalue("moto_s3").create_bucket(Bucket="results")
        results = "s3://results/runs"
    else:
        results = str(tmp_path / "results")
    manifest = write_fake_run(results, FOVS, run_id="swap")
    for suffix in (".nc", ".json"):  # the table with its own (valid) record: digests all agree
        _copy(manifest.fov_url("A1", suffix), manifest.fov_url("A2", suffix))

    code, err = _merge(manifest, capsys)
    assert code == 1
    line = err.strip().splitlines()[-1]
    assert "FOV A2 (index 1): slot" in line and "fovs/A2." in line and "holds FOV 'A1' (index 0) of run 'swap'" in line
    assert not storage.exists(manifest.merged_url)

    state = runs.progress(manifest)
    assert state["fovs_left"] == ["A2"] and state["fovs_done"] == 2
    (refused,) = state["fovs_refused"]
    assert refused.startswith("FOV A2 (index 1): slot") and "holds FOV 'A1' (index 0)" in refused


def test_a_table_swapped_under_its_own_record_is_refused_by_the_table_itself(tmp_path, capsys):
    """Another run's A2 table put in this run's A2 slot, with the slot's record edited to give
    its size and sha256: the table's own run id refuses it."""
    manifest = write_fake_run(str(tmp_path / "results"), FOVS, run_id="forged")
    other = write_fake_run(str(tmp_path / "other"), FOVS, run_id="elsewhere")
    src, dest = Path(other.fov_url("A2", ".nc")), Path(manifest.fov_url("A2", ".nc"))
    shutil.copyfile(src, dest)
    record_path = Path(manifest.fov_url("A2", ".json"))
    record = json.loads(record_path.read_text())
    digest = storage.Digest.of_file(dest)
    record.update(nc_bytes=digest.size, nc_sha256=digest.sha256)  # the digests made to agree
    record_path.write_text(json.dumps(record))

    code, err = _merge(manifest, capsys)
    assert code == 1
    assert "FOV A2 (index 1): slot" in err and "fovs/A2.nc holds FOV 'A2' (index 1) of run 'elsewhere'" in err
