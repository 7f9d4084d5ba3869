"""``transcripts.parquet``: one row per feature of the merged table, for pandas, pyarrow and scverse.

Written by the merge's CSV thread in the same pass, one Parquet row group per block, so the
merge's memory stays that of a block whatever the number of FOVs. Its columns are the CSV's,
with the same names, units and meanings (:mod:`starfish_batch.merge.columns`): ``xc, yc, zc``
the stage position in the experiment's unit, ``x, y, z`` pixels within the FOV, ``target``
null where a feature did not decode, ``cell_id`` ``<fov>:<cell>`` (null outside cells).

Values are the merged netCDF's, with its types (a coordinate that some FOVs lack is filled
with NaN there, as in the merged table); ``fov``, ``target`` and ``cell_id`` are dictionary
encoded (pandas reads them as categoricals).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from starfish_batch.merge import columns as vocabulary
from starfish_batch.merge.columns import MISSING_TARGETS
from starfish_batch.merge.schema import Schema
from starfish_batch.merge.spots import row_intensity

COLUMNS = tuple((name, None if name == vocabulary.MAX_INTENSITY else name) for name in vocabulary.COLUMNS)
"""(Parquet column, the merged table's coordinate it comes from); None: from the intensities."""
STRING_COLUMNS = frozenset({"target", "fov", "cell_id"})
NO_CELL = MISSING_TARGETS
"""``cell_id`` values (lower-case) that mean "in no cell": AssignTargets.Label leaves ``nan``."""
CELL_SEPARATOR = ":"
COMPRESSION = "zstd"


def global_cell_ids(fov_factor: tuple[list[str], np.ndarray],
                    cell_factor: tuple[list[str], np.ndarray]) -> tuple[list[str], np.ndarray]:
    """Cell ids unique across FOVs, ``<fov>:<cell>``, as (distinct values, each row's index).

    Rows in no cell get index -1. A cell id is local to its FOV in starfish (the label of its
    mask), so the same id in two FOVs is two cells.
    """
    fov_names, fov_codes = fov_factor
    cell_names, cell_codes = cell_factor
    in_cell = np.array([c.strip().lower() not in NO_CELL for c in cell_names], dtype=bool)
    n = len(cell_codes)
    if not n or not in_cell.any():
        return [], np.full(n, -1, dtype=np.intp)
    pair = fov_codes.astype(np.int64) * len(cell_names) + cell_codes
    uniq, inverse = np.unique(pair, return_inverse=True)
    names = [f"{fov_names[p // len(cell_names)]}{CELL_SEPARATOR}{cell_names[p % len(cell_names)]}"
             for p in uniq.tolist()]
    keep = in_cell[uniq % len(cell_names)]
    # renumber the kept pairs 0..k-1, the others -1
    new_index = np.where(keep, np.cumsum(keep) - 1, -1)
    return [nm for nm, k in zip(names, keep.tolist(), strict=True) if k], new_index[inverse]


class TranscriptsParquetWriter:
    """Writes the blocks of the merged table as row groups of ``transcripts.parquet``."""

    def __init__(self, path: Path, schema: Schema, bool_names: frozenset[str]):
        import pyarrow as pa  # lazy: pyarrow ~0.8 s
        import pyarrow.parquet as pq  # lazy: pyarrow ~0.8 s

        # malloc's pool, not jemalloc's: the merge allocates a block at a time, and jemalloc
        # keeps what it freed (make bench: 14 MB less at 200 FOVs, flat up to 2,000)
        pa.set_memory_pool(pa.system_memory_pool())
        self.pa = pa
        self.rows = 0
        self.columns: list[tuple[str, str | None]] = []
        fields = []
        coords = schema.coords
        for name, source in COLUMNS:
            if source is None:
                fields.append(pa.field(name, pa.from_numpy_dtype(np.dtype(schema.data.dtype))))
            elif name == "fov" or source in coords:
                if name in STRING_COLUMNS:
                    typ = pa.dictionary(pa.int32(), pa.string())
                elif source in bool_names:
                    typ = pa.bool_()
                else:
                    typ = pa.from_numpy_dtype(np.dtype(coords[source].dtype))
                fields.append(pa.field(name, typ))
            else:
                continue
            self.columns.append((name, source))
        self.bool_names = bool_names
        self.schema = pa.schema(fields)
        # dictionary pages for the string columns only: trying them on every float column
        # costs time and a hash table per column, for numbers that seldom repeat
        self.writer = pq.ParquetWriter(
            str(path), self.schema, compression=COMPRESSION,
            use_dictionary=[n for n, _ in self.columns if n in STRING_COLUMNS])

    # Arrays are made from their numpy buffers (``Array.from_buffers``), not with
    # ``pa.array``, which imports pandas (0.8 s and 40 MB) to check what it was given.

    def _numbers(self, values: np.ndarray, valid: np.ndarray | None = None):
        values = np.ascontiguousarray(values)
        if values.dtype == bool:  # numpy's are bytes, Arrow's bits
            return self._bools(values)
        return self.pa.Array.from_buffers(
            self.pa.from_numpy_dtype(values.dtype), len(values),
            [self._bitmap(valid), self.pa.py_buffer(values)])

    def _bools(self, values: np.ndarray):
        return self.pa.Array.from_buffers(self.pa.bool_(), len(values),
                                          [None, self._bitmap(values)])

    def _bitmap(self, mask: np.ndarray | None):
        if mask is None:
            return None
        return self.pa.py_buffer(np.packbits(np.asarray(mask, dtype=bool), bitorder="little"))

    def _strings(self, uniq: list[str], codes: np.ndarray, valid: np.ndarray | None = None):
        """A dictionary array: ``uniq`` the values, ``codes`` each row's index into them."""
        pa = self.pa
        encoded = [u.encode("utf-8") for u in uniq]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        values = pa.Array.from_buffers(pa.string(), len(encoded),
                                       [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))])
        return pa.DictionaryArray.from_arrays(self._numbers(codes.astype(np.int32), valid), values)

    def write_block(self, arrays: dict, data: np.ndarray, factors: dict) -> None:
        """One row group. ``factors``: (distinct values, codes) of ``fov`` and ``target``, and of
        ``cell_id`` when the table has it."""
        pa = self.pa
        n = len(data)
        if not n:
            return
        out = []
        for name, source in self.columns:
            if source is None:
                out.append(self._numbers(row_intensity(data)))
            elif name == "cell_id":
                uniq, index = global_cell_ids(factors["fov"], factors["cell_id"])
                valid = index >= 0
                out.append(self._strings(uniq, np.where(valid, index, 0),
                                         None if valid.all() else valid))
            elif name == "target":  # undecoded: null, not starfish's "nan" string
                uniq, codes = factors[name]
                missing = vocabulary.undecoded(uniq)
                valid = ~missing[codes] if missing.any() else None
                out.append(self._strings(uniq, codes, valid))
            elif name in STRING_COLUMNS:
                out.append(self._strings(*factors[name]))
            elif source in self.bool_names:
                out.append(self._bools(arrays[source] != 0))
            else:
                out.append(self._numbers(arrays[source]))
        self.writer.write_table(pa.Table.from_arrays(out, schema=self.schema), row_group_size=n)
        self.rows += n

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
