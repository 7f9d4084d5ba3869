"""A FOV's table counts as done only when its record proves it whole; the merge names a corrupt
one, and publishes its outputs as one set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from starfish_batch.core import storage
from starfish_batch.demo.testing import write_fake_run
from starfish_batch.launcher.runs import completed_fovs
from starfish_batch.merge import job as merge
from starfish_batch.process_fov import main as process_fov

FOVS = {"A1": 30, "A2": 40, "A3": 0, "A4": 25}
FINALS = ("merged_decoded_fovs.nc", "decoded_spots.csv.gz", "summary.json", "qc.png")


def _nc(manifest, fov: str) -> Path:
    return Path(storage.absolute(manifest.fov_url(fov, ".nc")))


def _flip_middle(path: Path) -> None:
    """Corrupt the data area in place: same size, one byte changed near the end of the file."""
    data = bytearray(path.read_bytes())
    at = len(data) - len(data) // 8
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture
def run(tmp_path):
    return write_fake_run(str(tmp_path / "results"), FOVS)


def test_only_whole_tables_count_as_done(run):
    _nc(run, "A1").write_bytes(_nc(run, "A1").read_bytes()[:1000])  # truncated
    _nc(run, "A2").write_bytes(b"")  # empty
    _flip_middle(_nc(run, "A3"))  # same size, data changed
    assert completed_fovs(run) == {"A4"}  # what --resume skips
    for fov in ("A1", "A2", "A3"):
        assert process_fov.already_done(run, fov) is None, fov  # what a worker redoes
    assert process_fov.already_done(run, "A4").fov == "A4"


def test_a_record_without_digest_proves_nothing(run):
    record_path = Path(storage.absolute(run.fov_url("A1", ".json")))
    record = json.loads(record_path.read_text())
    record.pop("nc_bytes", None), record.pop("nc_sha256", None)
    record_path.write_text(json.dumps(record))
    assert "A1" not in completed_fovs(run)
    assert process_fov.already_done(run, "A1") is None


def test_s3_table_of_the_wrong_size_is_not_done(moto_s3):
    moto_s3.create_bucket(Bucket="results")
    manifest = write_fake_run("s3://results/runs", {"A1": 5, "A2": 6}, run_id="s3-run")
    moto_s3.put_object(Bucket="results", Key="runs/s3-run/fovs/A1.nc", Body=b"\x89HDF\r\n")
    assert completed_fovs(manifest) == {"A2"}
    assert process_fov.already_done(manifest, "A1") is None
    assert process_fov.already_done(manifest, "A2") is not None


def _merge_error(manifest, capsys) -> str:
    code = merge.main(["--manifest-url", storage.join(manifest.run_root, "manifest.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1, err
    assert {p.name for p in Path(manifest.run_root).iterdir()} == {"fovs", "manifest.json"}
    return err[0]


@pytest.mark.parametrize("damage", ["truncated", "empty", "data", "metadata"])
def test_merge_names_a_corrupt_table_with_its_fov(run, capsys, damage):
    path = _nc(run, "A2")
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "data":
        _flip_middle(path)
    else:  # the superblock's root group address
        path.write_bytes(data[:40] + bytes(8) + data[48:])
    line = _merge_error(run, capsys)
    assert line.startswith("merge-batch-job: FOV A2: ") and "fovs/A2.nc is corrupt" in line


def test_failed_merged_table_leaves_no_companion_on_disk(run, capsys):
    Path(run.merged_url).mkdir()  # the merged table cannot be published: a folder is in the way
    code = merge.main(["--manifest-url", storage.join(run.run_root, "manifest.json")])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "merged_decoded_fovs.nc" in err[-1]
    left = {p.name for p in Path(run.run_root).iterdir()}
    assert left == {"fovs", "manifest.json", "merged_decoded_fovs.nc"}  # no summary, CSV or qc.png


def test_failed_merged_upload_leaves_no_companion_in_s3(moto_s3):
    moto_s3.create_bucket(Bucket="results")
    manifest = write_fake_run("s3://results/runs", FOVS, run_id="s3-run")
    # S3 refuses the merged table (a real 403 from the emulator's bucket policy)
    moto_s3.put_bucket_policy(Bucket="results", Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
                       "Resource": "arn:aws:s3:::results/*merged_decoded_fovs.nc"}]}))
    with pytest.raises(storage.StorageError, match="merged_decoded_fovs.nc"):
        merge.merge_run(manifest)
    keys = {o["Key"] for o in moto_s3.list_objects_v2(Bucket="results")["Contents"]}
    assert not {f"runs/s3-run/{name}" for name in FINALS} & keys
    assert not [k for k in keys if ".merge-staging" in k]  # staging keys removed too
    moto_s3.delete_bucket_policy(Bucket="results")
    merge.merge_run(manifest)
    keys = {o["Key"] for o in moto_s3.list_objects_v2(Bucket="results")["Contents"]}
    assert {f"runs/s3-run/{name}" for name in FINALS} <= keys
    assert not [k for k in keys if ".merge-staging" in k]
