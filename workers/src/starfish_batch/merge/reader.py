"""Per-FOV tables read into blocks of merged rows, a few microseconds per file.

A per-FOV file is netCDF-4 (HDF5) as xarray writes it. Its layout (``schema.read_layout``)
is read once with netCDF4 for each distinct file structure; every file is then read with
h5py, whose open costs a few microseconds where netCDF4 reads all metadata first, straight
into the block buffers. Values are copied raw (no CF decoding), and the merged file gets the
same attributes, so ``DecodedIntensityTable.open_netcdf`` decodes both the same way. String
columns are turned into fixed-width bytes and kept as codes into the block's distinct values
(``strings.StringTable``).

The merge never holds more than one block of features (``BLOCK_FEATURES``) and the few
per-FOV files being read, whatever the number of FOVs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.merge.schema import FEATURES, Layout, Schema, plan, read_layout
from starfish_batch.merge.strings import StringTable

BLOCK_FEATURES = 1 << 16
"""Features per block written at once: 65,536 x 16 float64 = 8 MB of intensities (two blocks
and the CSV thread's work on one are most of the merge's memory: a larger block is no faster)."""


class Block:
    """A bounded buffer of merged rows, one array per variable (codes for strings)."""

    def __init__(self, schema: Schema, capacity: int | None = None):
        capacity = capacity or BLOCK_FEATURES
        self.capacity = capacity
        self.size = 0
        self.arrays: dict[str, np.ndarray] = {}
        self.strings: dict[str, StringTable] = {}
        """The distinct values of each string column, whose array holds codes into them."""
        for name, spec in schema.coords.items():
            if spec.is_str:
                self.arrays[name] = np.empty(capacity, dtype=np.intp)
                self.strings[name] = StringTable()
            else:
                self.arrays[name] = np.empty(capacity, dtype=np.dtype(spec.dtype))
        self.data_name = schema.data.name
        self.arrays[self.data_name] = np.empty(
            (capacity, *schema.data_shape()), dtype=np.dtype(schema.data.dtype)
        )
        self.fov_slices: list[tuple[str, int, int]] = []
        """(fov, start, stop) of the rows of each FOV piece in this block."""
        self.factors: dict | None = None
        """``spots.factorize``-style (values, codes) of its string columns, once counted."""

    @property
    def room(self) -> int:
        return self.capacity - self.size

    def view(self) -> dict[str, np.ndarray]:
        return {name: arr[: self.size] for name, arr in self.arrays.items()}

    def factor(self, name: str) -> tuple[list[str], np.ndarray]:
        """A string column as (distinct values, each row's index among them)."""
        return self.strings[name].decoded(), self.arrays[name][: self.size]

    def clear(self) -> None:
        self.size = 0
        self.fov_slices = []
        for table in self.strings.values():
            table.clear()


class H5Table:
    """One per-FOV file, opened with h5py's low-level API (a few microseconds per call)."""

    def __init__(self, source: Path | bytes, label: str):
        import h5py  # lazy: h5py ~0.2 s

        self.h5py = h5py
        try:
            if isinstance(source, bytes | bytearray | memoryview):
                self.fid = h5py.h5f.open_file_image(bytes(source))
            else:
                self.fid = h5py.h5f.open(str(source).encode(), h5py.h5f.ACC_RDONLY)
        except Exception as exc:
            raise StarfishBatchError(f"{label} is not a netCDF-4 file: {exc}") from exc
        root = h5py.h5g.open(self.fid, b"/")
        self.datasets = {}
        for raw in root:
            obj = h5py.h5o.open(root, raw)
            if isinstance(obj, h5py.h5d.DatasetID):
                self.datasets[raw.decode("utf-8")] = obj

    def close(self) -> None:
        self.datasets = {}
        self.fid.close()

    def attr(self, name: str, attr: str):
        dsid = self.datasets[name]
        key = attr.encode()
        if not self.h5py.h5a.exists(dsid, key):
            return None
        aid = self.h5py.h5a.open(dsid, key)
        out = np.empty(aid.shape, dtype=aid.dtype)
        aid.read(out)
        return out

    def file_attr(self, attr: str):
        """A global attribute of the file (raw), or None."""
        root = self.h5py.h5g.open(self.fid, b"/")
        key = attr.encode()
        if not self.h5py.h5a.exists(root, key):
            return None
        aid = self.h5py.h5a.open(root, key)
        out = np.empty(aid.shape, dtype=aid.dtype)
        aid.read(out)
        return out

    def shape(self, name: str) -> tuple[int, ...]:
        return self.datasets[name].shape

    def read(self, name: str, out: np.ndarray | None = None, start: int | None = None,
             stop: int | None = None) -> np.ndarray:
        """Rows ``start:stop`` (along the first axis) into ``out`` (C-contiguous) or a new array."""
        h5s = self.h5py.h5s
        dsid = self.datasets[name]
        shape = dsid.shape
        whole = start is None or (start == 0 and stop == (shape[0] if shape else 0))
        rows = shape[0] if whole or not shape else stop - start
        target_shape = ((rows, *shape[1:]) if shape else ())
        buf = np.empty(target_shape, dtype=dsid.dtype) if out is None else out
        if buf.size:
            if whole:
                dsid.read(h5s.ALL, h5s.ALL, buf)
            else:
                fspace = dsid.get_space()
                fspace.select_hyperslab((start,) + (0,) * (len(shape) - 1), target_shape)
                dsid.read(h5s.create_simple(target_shape), fspace, buf)
        return buf


class FovReader:
    """Reads per-FOV files into blocks; caches one layout per distinct file structure."""

    STRING_WIDTH = 16
    """Bytes first tried for a string column (FOV and target names); doubled while a value
    fills it (and so may have been cut)."""

    def __init__(self):
        self._layouts: dict[tuple, Layout] = {}
        self._plans: dict[tuple[int, int], dict[str, str]] = {}
        self._dim_names: set[str] = {FEATURES}
        self._widths: dict[str, int] = {}

    def read_strings(self, h5: H5Table, name: str, start: int, stop: int) -> np.ndarray:
        """A string column's rows as ``S<width>``, width a multiple of 8 that holds them all.

        Read as bytes objects, then made fixed-width by numpy, not straight from HDF5 into
        ``S<width>``: h5py's conversion from variable-length to fixed-width strings never
        frees the strings HDF5 allocated (h5py 3.16: 30 MB per million values), so a
        2,000-FOV merge would grow by hundreds of MB.
        """
        values = h5.read(name, None, start, stop)
        width = self._widths.get(name, self.STRING_WIDTH)
        while True:
            raw = values.astype(f"S{width}")  # in C; a longer value is cut to ``width``
            if not len(raw) or not raw.view(np.uint8).reshape(len(raw), width)[:, -1].any():
                self._widths[name] = width
                return raw
            width *= 2

    def open(self, source: Path | bytes, label: str) -> H5Table:
        return H5Table(source, label)

    def layout(self, h5: H5Table, source: Path | bytes, label: str,
               known: Layout | None = None) -> Layout:
        items = []
        extra = []
        for name, dsid in h5.datasets.items():
            shape = dsid.shape
            items.append((name, dsid.dtype.str, len(shape)))
            if len(shape) >= 2:
                coords = h5.attr(name, "_Netcdf4Coordinates")
                extra.append((name, None if coords is None else tuple(np.ravel(coords).tolist())))
            elif name in self._dim_names:
                dimid = h5.attr(name, "_Netcdf4Dimid")
                extra.append((name, None if dimid is None else int(np.ravel(dimid)[0])))
        key = (tuple(items), tuple(extra))
        layout = self._layouts.get(key)
        if layout is None:
            layout = known or read_layout(source, label)
            if set(layout.data.dims) - self._dim_names:
                # learn the dimension names, then key this file with their ids
                self._dim_names.update(layout.data.dims)
                return self.layout(h5, source, label, layout)
            self._layouts[key] = layout
        return layout

    def plan(self, schema: Schema, layout: Layout, fov: str) -> dict[str, str]:
        # Static values are checked for every file (they may differ with the same layout).
        key = (id(schema), id(layout))
        cached = self._plans.get(key)
        if cached is None:
            cached = plan(schema, layout, fov)
            self._plans[key] = cached
        return cached

    def n_features(self, layout: Layout, h5: H5Table) -> int:
        return int(h5.shape(layout.data.name)[layout.data.dims.index(FEATURES)])

    def check_static(self, schema: Schema, layout: Layout, h5: H5Table, fov: str) -> None:
        for name, (_spec, ref) in schema.static.items():
            values = h5.read(name)
            if values.shape != ref.shape or not np.array_equal(values, ref):
                raise StarfishBatchError(
                    f"FOV {fov}: coordinate {name!r} is {np.asarray(values).tolist()} where FOV "
                    f"{schema.first_fov.get(name, '?')} has {ref.tolist()}"
                )

    def read_into(self, block: Block, schema: Schema, layout: Layout, how: dict[str, str],
                  h5: H5Table, start: int, stop: int) -> None:
        """Rows ``start:stop`` of the file into the block, after its current rows."""
        k = stop - start
        at = block.size
        for name, action in how.items():
            buf = block.arrays[name]
            strings = block.strings.get(name)
            if action == "fill":
                buf[at: at + k] = strings.code(b"") if strings is not None \
                    else schema.coords[name].fill_value()
            elif strings is not None:
                strings.encode(self.read_strings(h5, name, start, stop), buf[at: at + k])
            elif action == "transpose":
                f_axis = layout.data.dims.index(FEATURES)
                whole = np.moveaxis(h5.read(layout.data.name), f_axis, 0)
                order = [0] + [1 + [d for d in layout.data.dims if d != FEATURES].index(d)
                               for d in schema.data.dims[1:]]
                buf[at: at + k] = np.transpose(whole, order)[start:stop]
            elif k:
                h5.read(name, buf[at: at + k], start, stop)
        block.size += k
