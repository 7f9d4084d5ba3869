"""String columns of the merge: codes into distinct values, and the two ways of writing them."""

from __future__ import annotations

import warnings

import h5py
import numpy as np
import pytest

from starfish_batch.demo.testing import synthetic_decoded_table, write_fake_run
from starfish_batch.merge import job as merge
from starfish_batch.merge import spots, strings

warnings.filterwarnings("ignore", category=DeprecationWarning)

VALUES = ["", "ACTB", "é", "gène-7-" + "x" * 40, "数据", "🧬 4-byte", "", "a,b \"q\"", "x" * 300]
"""Empty strings, multi-byte UTF-8 (2, 3 and 4 bytes), longer than 16 and 256 bytes."""


def _codes(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, len(VALUES), n).astype(np.intp)


def _string_dataset(f: h5py.File, name: str) -> h5py.Dataset:
    return f.create_dataset(name, shape=(0,), maxshape=(None,), chunks=(64,),
                            dtype=h5py.string_dtype("utf-8"))


def _append(dset, write, values: list[bytes], codes: np.ndarray) -> None:
    start = dset.shape[0]
    dset.resize(start + len(codes), axis=0)
    write(dset, start, values, codes)


def test_pointer_write_and_plain_write_read_back_the_same(tmp_path):
    """The same column written both ways (two appends, the second at an offset) reads back
    identical, bytes and text, with empty and multi-byte values."""
    values = [v.encode("utf-8") for v in VALUES]
    pieces = [_codes(300, 1), _codes(5, 2), np.array([0, 6, 0], dtype=np.intp)]
    path = tmp_path / "both.h5"
    with h5py.File(path, "w") as f:
        fast, plain = _string_dataset(f, "fast"), _string_dataset(f, "plain")
        for codes in pieces:
            _append(fast, strings.pointer_write, values, codes)
            _append(plain, strings.plain_write, values, codes)
    want = [VALUES[c] for c in np.concatenate(pieces)]
    with h5py.File(path, "r") as f:
        fast_bytes, plain_bytes = f["fast"][...].tolist(), f["plain"][...].tolist()
        assert fast_bytes == plain_bytes == [w.encode("utf-8") for w in want]
        assert f["fast"].asstr()[...].tolist() == f["plain"].asstr()[...].tolist() == want
        assert f["fast"].dtype == f["plain"].dtype


def test_pointer_write_works_here():
    """The probe finds the fast path working (else the merge would quietly be slower)."""
    assert strings._check_pointer_write()


def test_write_strings_falls_back_when_the_fast_path_fails(tmp_path, monkeypatch):
    def broken(*_args):
        raise TypeError("no pointer write in this h5py")

    values = [v.encode("utf-8") for v in VALUES]
    codes = _codes(100, 3)
    monkeypatch.setattr(strings, "_POINTER_WRITE_OK", True)
    monkeypatch.setattr(strings, "pointer_write", broken)
    with h5py.File(tmp_path / "f.h5", "w") as f:
        dset = _string_dataset(f, "s")
        _append(dset, strings.write_strings, values, codes)
        assert strings._POINTER_WRITE_OK is False  # plain from now on
        _append(dset, strings.write_strings, values, codes[:7])
        assert dset.asstr()[...].tolist() == [VALUES[c] for c in [*codes, *codes[:7]]]


def test_write_strings_falls_back_when_the_probe_reads_back_wrong(tmp_path, monkeypatch):
    def wrong(dset, start, values, codes):  # writes, silently, the wrong rows
        strings.plain_write(dset, start, values[::-1], codes)

    monkeypatch.setattr(strings, "_POINTER_WRITE_OK", None)
    monkeypatch.setattr(strings, "pointer_write", wrong)
    values = [v.encode("utf-8") for v in VALUES]
    codes = _codes(50, 4)
    with h5py.File(tmp_path / "f.h5", "w") as f:
        dset = _string_dataset(f, "s")
        _append(dset, strings.write_strings, values, codes)
        assert strings._POINTER_WRITE_OK is False
        assert dset.asstr()[...].tolist() == [VALUES[c] for c in codes]


def test_merge_with_the_plain_write_gives_the_same_file(tmp_path, monkeypatch):
    """The merged netCDF file, byte for byte, whichever way its strings were written."""
    fovs = {"é-fov": 40, "empty": 0, "a-field-of-view-whose-name-is-longer-than-32-bytes": 25}
    tables = {}
    for i, (fov, n) in enumerate(fovs.items()):
        names = np.array([VALUES[j % len(VALUES)] for j in range(n)], dtype=str)
        tables[fov] = synthetic_decoded_table(n, seed=i, shape=(60, 80)).assign_coords(
            target=("features", names))
    merged = {}
    for way in (True, False):
        monkeypatch.setattr(strings, "_POINTER_WRITE_OK", way)
        manifest = write_fake_run(str(tmp_path / f"r{way}"), fovs, tables=tables)
        merged[way] = merge.merge_run(manifest).merged_url
    with open(merged[True], "rb") as fast, open(merged[False], "rb") as plain:
        assert fast.read() == plain.read()
    with h5py.File(merged[False]) as f:
        assert f["target"].asstr()[...].tolist() == [
            VALUES[j % len(VALUES)] for n in fovs.values() for j in range(n)]


def test_string_table_codes_pieces_into_one_table():
    table = strings.StringTable()
    pieces = [np.array([v.encode() for v in VALUES], dtype="S304"),
              np.full(10, b"\xc3\xa9", dtype="S16"),  # one value: the shortcut
              np.array([b"new", b"ACTB", b"", b"new"], dtype="S8"),
              np.array([], dtype="S8")]
    for raw in pieces:
        out = np.empty(len(raw), dtype=np.intp)
        table.encode(raw, out)
        assert [table.values[c] for c in out] == raw.tolist()
    assert len(table.values) == len(set(table.values)) == len(set(VALUES)) + 1
    assert table.decoded()[table.code(b"\xc3\xa9")] == "é"


@pytest.mark.parametrize("values, uniq, codes", [
    (np.array(["b", "a", "b", "é", ""], dtype=object), ["b", "a", "é", ""], [0, 1, 0, 2, 3]),
    (np.array(["x", b"x", b"\xc3\xa9", "é", "y"], dtype=object), ["x", "é", "y"], [0, 0, 1, 1, 2]),
    (np.array([3, 1, 3, 3]), ["3", "1"], [0, 1, 0, 0]),
    (np.array([2.0, np.nan, 2.0, np.nan]), ["2.0", "nan"], [0, 1, 0, 1]),
    (np.array([True, False, True]), ["True", "False"], [0, 1, 0]),
    (np.array([], dtype=object), [], []),
])
def test_spots_factorize(values, uniq, codes):
    """Distinct values as text in order of first appearance (str and bytes of one text are one)."""
    got_uniq, got_codes = spots.factorize(values)
    assert got_uniq == uniq
    assert got_codes.tolist() == codes
    assert [got_uniq[c] for c in got_codes] == [uniq[c] for c in codes]


def test_piece_labels():
    labels = spots.piece_labels([("a", 0, 2), ("b", 2, 5)], 5)
    assert labels.tolist() == ["a", "a", "b", "b", "b"]
    assert spots.factorize(labels)[0] == ["a", "b"]
