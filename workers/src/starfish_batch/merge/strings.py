"""String columns (FOV names, targets): codes into a block's distinct values, and their HDF5 write.

A block holds a string column as one code per row into a ``StringTable`` of the distinct
values (UTF-8 bytes): counting, the CSV and the merged file all work from the few distinct
values, never from one Python object per row.

Writing a string column to the merged file (variable-length UTF-8 strings) goes through
``write_strings``, which uses the fast ``pointer_write`` when it works and ``plain_write``
(ordinary h5py) otherwise; both write the same values.
"""

from __future__ import annotations

import numpy as np


class StringTable:
    """The distinct strings of one block's string column, which holds their codes."""

    def __init__(self):
        self.values: list[bytes] = []
        self._index: dict[bytes, int] = {}

    def code(self, value: bytes) -> int:
        found = self._index.get(value)
        if found is None:
            found = self._index[value] = len(self.values)
            self.values.append(value)
        return found

    def encode(self, raw: np.ndarray, out: np.ndarray) -> None:
        """The codes of ``raw`` (fixed-width bytes, as ``FovReader.read_strings`` gives) into ``out``."""
        if not len(raw):
            return
        # One value (the fov column, and any single-valued piece): the comparison takes 43 us
        # for 3,800 rows, np.unique 275 us.
        if (raw == raw[0]).all():
            out[:] = self.code(bytes(raw[0]))
            return
        # np.unique rather than a hand-written factoriser. Hashing the 8-byte words and sorting
        # the hashes was faster (3,800 rows of 30 targets: 119 us against 298 us), but that is
        # 40 ms of a 1.8 s merge of 200 FOVs, which make bench does not tell from noise.
        # pandas.factorize of the object array h5py reads (160 us, without making it fixed-width)
        # would be faster still, but importing pandas adds 0.15 s to the merge.
        local, inverse = np.unique(raw, return_inverse=True)
        lut = np.array([self.code(bytes(v)) for v in local], dtype=np.intp)
        out[:] = lut[inverse.reshape(-1)]

    def decoded(self) -> list[str]:
        return [v.decode("utf-8", "replace") for v in self.values]

    def clear(self) -> None:
        self.values = []
        self._index = {}


# ---------------------------------------------------------------------------------------
# writing a column of variable-length strings


def pointer_write(dset, start: int, values: list[bytes], codes: np.ndarray) -> None:
    """Rows ``start:start + len(codes)`` of ``dset`` (variable-length strings) := ``values[codes]``.

    The fast path, and the only hand-written HDF5 in the merge. The distinct values are laid
    out once as NUL-terminated C strings in one buffer, and HDF5 is given each row's *address*
    in it (an array of ``char *``), so it copies the strings itself: no Python object per row.
    It exists because it was measured faster: for 65,536 rows of 30 distinct targets, 10.1 ms
    where ``plain_write`` takes 12.8 ms (14.7 ms through fixed-width bytes); 14.9 against
    16.6 ms for 20,000 distinct values (h5py 3.16, HDF5 2.0).

    h5py converts the rows into its own buffer first and frees only that copy (valgrind run on
    a multi-block merge: no invalid read or free). ``dset`` must already hold the rows.
    """
    import h5py  # lazy: h5py ~0.2 s

    n = len(codes)
    width = max((len(v) for v in values), default=0) + 1
    buffer = np.array(values or [b""], dtype=f"S{width}")
    addresses = np.uint64(buffer.ctypes.data) + \
        np.arange(len(buffer), dtype=np.uint64) * np.uint64(width)
    rows = np.ascontiguousarray(addresses[codes])
    fspace = dset.id.get_space()
    fspace.select_hyperslab((start,), (n,))
    dset.id.write(h5py.h5s.create_simple((n,)), fspace, rows, mtype=dset.id.get_type())
    del buffer  # alive until HDF5 has copied the strings


def plain_write(dset, start: int, values: list[bytes], codes: np.ndarray) -> None:
    """``pointer_write`` done the ordinary h5py way: an object array of the rows' bytes."""
    table = np.empty(len(values), dtype=object)
    table[:] = values
    dset[start: start + len(codes)] = table[codes]


_POINTER_WRITE_OK: bool | None = None
"""Whether ``pointer_write`` works here: None until checked (``_check_pointer_write``)."""

_PROBE = ["", "é", "a longer value, 𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "x"]


def _check_pointer_write() -> bool:
    """Write a few strings with ``pointer_write`` to a file in memory and read them back."""
    import h5py  # lazy: h5py ~0.2 s

    try:
        values = [v.encode("utf-8") for v in _PROBE]
        codes = np.array([2, 0, 1, 1, 3, 0, 2], dtype=np.intp)
        with h5py.File("pointer-write-probe.h5", "w", driver="core", backing_store=False) as f:
            dset = f.create_dataset("s", shape=(len(codes),), dtype=h5py.string_dtype("utf-8"))
            pointer_write(dset, 0, values, codes)
            back = dset[...].tolist()
        return back == [values[c] for c in codes]
    except Exception:
        return False


def write_strings(dset, start: int, values: list[bytes], codes: np.ndarray) -> None:
    """Rows ``start:start + len(codes)`` of ``dset`` := ``values[codes]`` (``dset`` already holds them).

    ``pointer_write`` when it works in this process (checked once), else ``plain_write``;
    a fast write that fails is redone the plain way, which then serves for the rest.
    """
    global _POINTER_WRITE_OK
    if not len(codes):
        return
    if _POINTER_WRITE_OK is None:
        _POINTER_WRITE_OK = _check_pointer_write()
    if _POINTER_WRITE_OK:
        try:
            pointer_write(dset, start, values, codes)
            return
        except Exception:
            _POINTER_WRITE_OK = False
    plain_write(dset, start, values, codes)
