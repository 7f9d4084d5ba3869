"""The storage layer: local paths, file:// and s3:// behave alike, writes are whole."""

from __future__ import annotations

import os

import pytest

from starfish_batch.core import storage
from starfish_batch.core.errors import AlreadyExists, StorageError


@pytest.fixture(params=["path", "file", "s3"])
def base_url(request, tmp_path, moto_s3):
    if request.param == "s3":
        moto_s3.create_bucket(Bucket="results")
        return "s3://results/prefix"
    if request.param == "file":
        return f"file://{tmp_path}/out"
    return str(tmp_path / "out")


def test_round_trip_list_and_exists(base_url):
    url = storage.join(base_url, "run", "fovs", "A1.json")
    assert not storage.exists(url)
    storage.write_text(url, '{"a": 1}')
    assert storage.exists(url)
    assert storage.read_text(url) == '{"a": 1}'
    storage.write_bytes(storage.join(base_url, "run", "manifest.json"), b"{}")
    assert storage.list_names(storage.join(base_url, "run")) == ["fovs/A1.json", "manifest.json"]
    assert storage.list_names(storage.join(base_url, "nothing-here")) == []


def test_staged_output_publishes_only_on_success(base_url):
    url = storage.join(base_url, "table.nc")
    with pytest.raises(RuntimeError), storage.staged_output(url) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("recipe crashed mid-write")
    assert not storage.exists(url)
    with storage.staged_output(url) as tmp:
        tmp.write_bytes(b"whole")
    assert storage.read_bytes(url) == b"whole"
    with storage.local_copy(url) as path:
        assert path.read_bytes() == b"whole"


def test_local_write_leaves_no_temporary_file(tmp_path):
    url = str(tmp_path / "x" / "manifest.json")
    storage.write_text(url, "{}")
    storage.write_text(url, '{"second": true}')
    assert sorted(os.listdir(tmp_path / "x")) == ["manifest.json"]


def test_missing_object_names_the_url(base_url):
    url = storage.join(base_url, "missing.json")
    with pytest.raises(StorageError, match="cannot read .*missing.json"):
        storage.read_bytes(url)


def test_check_writable_names_the_location(tmp_path, moto_s3):
    with pytest.raises(StorageError, match="s3://no-such-bucket"):
        storage.check_writable("s3://no-such-bucket/results")
    read_only = tmp_path / "ro"
    read_only.mkdir()
    read_only.chmod(0o500)
    if os.access(read_only, os.W_OK):  # root ignores permissions: use a file as "directory"
        blocker = tmp_path / "file"
        blocker.write_text("")
        target = str(blocker / "results")
    else:
        target = str(read_only / "results")
    with pytest.raises(StorageError, match="cannot write"):
        storage.check_writable(target)
    storage.check_writable(str(tmp_path / "fine"))
    assert list((tmp_path / "fine").iterdir()) == []


def test_absolute_and_unsupported_scheme(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert storage.absolute("rel/dir") == str(tmp_path / "rel" / "dir")
    assert storage.absolute(f"file://{tmp_path}/a") == str(tmp_path / "a")
    assert storage.absolute("s3://bucket/key/") == "s3://bucket/key"
    with pytest.raises(StorageError, match="gs://bucket"):
        storage.absolute("gs://bucket/x")


def test_staged_output_is_as_readable_as_any_file(tmp_path):
    umask = os.umask(0o022)
    try:
        url = str(tmp_path / "merged.nc")
        with storage.staged_output(url) as tmp:
            tmp.write_bytes(b"x")
        assert (tmp_path / "merged.nc").stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(umask)


def test_exclusive_create_lets_exactly_one_writer_claim_a_name(base_url):
    url = storage.join(base_url, "run", "manifest.json")
    storage.create_exclusive(url, b"first")
    with pytest.raises(AlreadyExists, match="already exists"):
        storage.create_exclusive(url, b"second")
    assert storage.read_bytes(url) == b"first"  # the loser changed nothing
    storage.delete(url)
    assert not storage.exists(url)
    storage.create_exclusive(url, b"again")
    assert storage.read_bytes(url) == b"again"
