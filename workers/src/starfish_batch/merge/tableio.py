"""Per-FOV DecodedIntensityTable files in, one merged netCDF file out, a block at a time.

The merge never holds more than one block of features (``BLOCK_FEATURES``) and the few
per-FOV files being read, whatever the number of FOVs.

Reading. A per-FOV file is netCDF-4 (HDF5) as xarray writes it. Its *layout* (which
variables, their dimensions, dtypes and attributes, which one is the data variable) is
read once with netCDF4 for each distinct file structure; every file is then read with
h5py, whose open costs a few microseconds where netCDF4 reads all metadata first, straight
into the block buffers. Values are copied raw (no CF decoding), and the merged file gets the
same attributes, so ``DecodedIntensityTable.open_netcdf`` decodes both the same way. String
columns are turned into fixed-width bytes and kept as codes into the block's distinct values
(``StringTable``): no Python object per row, in reading, counting or writing.

Writing. ``MergedWriter`` has netCDF4 create the file, then appends blocks with h5py (a
quarter of netCDF4's time for variable-length strings) to a file with an unlimited
``features`` dimension, variables of the same types and attributes as the per-FOV files
(strings stay variable-length, which xarray reads back as ``<U``), so the merged file
decodes like the tables it came from.

What "the concatenation" is (``xr.concat(tables, dim="features")``, which is what
``IntensityTable.concatenate_intensity_tables`` does in starfish 0.4.0):

- features are the FOVs' features in manifest order; coordinates on ``features`` are
  concatenated; the other coordinates (``r``, ``c``) must be equal in every table;
- attributes (of the table and of each coordinate) are the first table's
  (``combine_attrs="override"``);
- dtypes are promoted as numpy/xarray promote them (float32 with float64 gives float64);
- 0-feature tables contribute nothing (their missing bounding-box coordinates do not
  matter); a run whose tables are all empty gives the first one's 0-feature table;
- a coordinate that some non-empty tables lack (xr.concat refuses that: "not present in
  all datasets") is kept and filled as ``xr.concat`` fills a missing data variable: NaN,
  with integers and booleans promoted to floating point as xarray does. Strings are
  filled with "" (xarray would give an object array holding NaN, which netCDF cannot store).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from starfish_batch.errors import StarfishBatchError

FEATURES = "features"
BLOCK_FEATURES = 1 << 16
"""Features per block written at once: 65,536 x 16 float64 = 8 MB of intensities (two blocks
and the CSV thread's work on one are most of the merge's memory: a larger block is no faster)."""
CHUNK_FEATURES = 1 << 15
"""HDF5 chunk length along ``features`` of the merged file."""
CHUNK_CACHE_BYTES = 2 << 20
STR = "str"
"""The dtype token of a variable-length string variable."""

# Attributes that only describe how values are stored; a promoted (filled) variable drops them.
_STORAGE_ATTRS = ("_FillValue", "missing_value", "dtype", "_Unsigned", "_Encoding",
                  "scale_factor", "add_offset")


@dataclasses.dataclass
class VarSpec:
    name: str
    dims: tuple[str, ...]
    dtype: object
    """``STR`` or a numpy dtype (the stored type: a boolean is int8 with ``dtype: bool``)."""
    attrs: dict
    """The netCDF attributes, ``_FillValue`` included."""

    @property
    def is_str(self) -> bool:
        return self.dtype == STR

    def fill_value(self):
        """What a row without this coordinate holds."""
        if self.is_str:
            return b""
        return self.attrs.get("_FillValue", np.nan)


@dataclasses.dataclass
class Layout:
    """What one per-FOV file holds, read from its netCDF metadata."""

    data: VarSpec
    coords: dict[str, VarSpec]
    """Coordinates along ``features`` (1-D), in file order."""
    static: dict[str, tuple[VarSpec, np.ndarray]]
    """Coordinates without ``features`` (``r``, ``c``), with their values."""
    dim_sizes: dict[str, int]
    """Sizes of the dimensions other than ``features``."""


@dataclasses.dataclass
class Schema:
    """The variables of the merged file."""

    data: VarSpec
    coords: dict[str, VarSpec]
    static: dict[str, tuple[VarSpec, np.ndarray]]
    dim_sizes: dict[str, int]
    first_fov: dict[str, str] = dataclasses.field(default_factory=dict)
    """For error messages: the FOV each coordinate was first seen in."""

    @classmethod
    def from_layout(cls, layout: Layout, fov: str) -> Schema:
        if layout.data.dims[0] != FEATURES:
            raise StarfishBatchError(
                f"FOV {fov}: the table's first dimension is {layout.data.dims[0]!r}, not "
                f"'features': not a DecodedIntensityTable"
            )
        return cls(
            data=layout.data, coords=dict(layout.coords), static=dict(layout.static),
            dim_sizes=dict(layout.dim_sizes),
            first_fov={name: fov for name in [*layout.coords, *layout.static]},
        )

    def data_shape(self) -> tuple[int, ...]:
        return tuple(self.dim_sizes[d] for d in self.data.dims[1:])


class SchemaChange(Exception):
    """A FOV needs a wider schema than the one being written: the merge restarts with it."""

    def __init__(self, schema: Schema, reason: str):
        super().__init__(reason)
        self.schema = schema
        self.reason = reason


# ---------------------------------------------------------------------------------------
# layouts


def dtype_token(dtype) -> object:
    if dtype is str or dtype == STR:
        return STR
    dtype = np.dtype(dtype)
    if dtype.kind == "O":
        import h5py

        if h5py.check_string_dtype(dtype) is not None:
            return STR
    return dtype


def read_layout(source: Path | bytes, label: str) -> Layout:
    """The layout of a per-FOV file (a path, or its bytes), with netCDF4: exact netCDF semantics."""
    import netCDF4

    try:
        if isinstance(source, bytes | bytearray | memoryview):
            ds = netCDF4.Dataset("fov.nc", memory=bytes(source))
        else:
            ds = netCDF4.Dataset(str(source))
    except OSError as exc:
        raise StarfishBatchError(f"{label} is not a netCDF file: {exc}") from exc
    try:
        ds.set_auto_maskandscale(False)
        ds.set_always_mask(False)
        dims = {name: len(dim) for name, dim in ds.dimensions.items()}
        variables = ds.variables
        coord_names = {name for name in variables if name in dims}
        for var in variables.values():
            if "coordinates" in var.ncattrs():
                coord_names.update(str(var.getncattr("coordinates")).split())
        data_names = [name for name in variables if name not in coord_names]
        if len(data_names) != 1:
            raise StarfishBatchError(
                f"{label} is not one DecodedIntensityTable: it has {len(data_names)} data "
                f"variables ({', '.join(data_names) or 'none'})"
            )
        specs = {
            name: VarSpec(name, tuple(var.dimensions), dtype_token(var.dtype),
                          {a: var.getncattr(a) for a in var.ncattrs()})
            for name, var in variables.items()
        }
        data = specs[data_names[0]]
        if FEATURES not in data.dims:
            raise StarfishBatchError(f"{label}: the table has no 'features' dimension")
        coords: dict[str, VarSpec] = {}
        static: dict[str, tuple[VarSpec, np.ndarray]] = {}
        for name in variables:
            spec = specs[name]
            if name == data.name or name not in coord_names:
                continue
            if FEATURES in spec.dims:
                if spec.dims != (FEATURES,):
                    raise StarfishBatchError(
                        f"{label}: coordinate {name!r} has dimensions {spec.dims}; "
                        f"only 1-D coordinates along 'features' can be merged"
                    )
                coords[name] = spec
            else:
                static[name] = (spec, np.asarray(variables[name][...]))
        sizes = {d: dims[d] for d in data.dims if d != FEATURES}
        return Layout(data=data, coords=coords, static=static, dim_sizes=sizes)
    finally:
        ds.close()


def _decoded_attrs(attrs: dict) -> dict:
    return {k: v for k, v in attrs.items() if k not in _STORAGE_ATTRS}


def promoted(spec: VarSpec) -> VarSpec:
    """``spec`` as a coordinate that some tables lack: the type xarray's concat gives it."""
    if spec.is_str:
        return spec
    dtype = np.dtype(spec.dtype)
    if dtype.kind == "f":
        return spec
    if dtype.kind in "iub" and spec.attrs.get("dtype") != "bool" and dtype.itemsize <= 2:
        new = np.dtype(np.float32)  # xarray.core.dtypes.maybe_promote
    else:
        new = np.dtype(np.float64)
    attrs = _decoded_attrs(spec.attrs)
    attrs["_FillValue"] = new.type(np.nan)
    return VarSpec(spec.name, spec.dims, new, attrs)


def _fillable(spec: VarSpec) -> bool:
    return spec.is_str or np.dtype(spec.dtype).kind == "f"


def _common_dtype(a: VarSpec, b: VarSpec, fov: str) -> object | None:
    """The dtype holding both, or None when they cannot be merged."""
    if a.is_str or b.is_str:
        return STR if (a.is_str and b.is_str) else None
    bool_a, bool_b = a.attrs.get("dtype") == "bool", b.attrs.get("dtype") == "bool"
    if bool_a != bool_b:
        # Stored as int8 with dtype=bool: promote as the decoded types would.
        da = np.dtype(bool) if bool_a else np.dtype(a.dtype)
        db = np.dtype(bool) if bool_b else np.dtype(b.dtype)
        return np.result_type(da, db)
    return np.result_type(np.dtype(a.dtype), np.dtype(b.dtype))


def plan(schema: Schema, layout: Layout, fov: str) -> dict[str, str]:
    """How to read ``layout`` into ``schema``: per variable "read", "fill" or "transpose".

    Raises ``SchemaChange`` with a wider schema when this file does not fit, and
    StarfishBatchError when no schema can hold both.
    """
    if set(layout.static) != set(schema.static) or layout.dim_sizes.keys() != schema.dim_sizes.keys():
        raise StarfishBatchError(
            f"FOV {fov}: its table has dimensions {sorted(layout.data.dims)} and coordinates "
            f"{sorted(layout.static)} where the others have {sorted(schema.data.dims)} and "
            f"{sorted(schema.static)}"
        )
    for name, (_spec, values) in layout.static.items():
        _ref_spec, ref_values = schema.static[name]
        if values.shape != ref_values.shape or not np.array_equal(values, ref_values):
            raise StarfishBatchError(
                f"FOV {fov}: coordinate {name!r} is {values.tolist()} where FOV "
                f"{schema.first_fov.get(name, '?')} has {ref_values.tolist()}"
            )
    result: dict[str, str] = {}
    wider = dataclasses.replace(schema, coords=dict(schema.coords),
                                first_fov=dict(schema.first_fov))
    reasons: list[str] = []

    def widen(name: str, spec: VarSpec, why: str) -> None:
        wider.coords[name] = spec
        reasons.append(why)

    # the data variable
    if set(layout.data.dims) != set(schema.data.dims):
        raise StarfishBatchError(
            f"FOV {fov}: its table has dimensions {layout.data.dims}, others {schema.data.dims}"
        )
    data_dtype = _common_dtype(schema.data, layout.data, fov)
    if data_dtype is None or data_dtype == STR:
        raise StarfishBatchError(f"FOV {fov}: its intensities are {layout.data.dtype}")
    if data_dtype != np.dtype(schema.data.dtype):
        wider.data = dataclasses.replace(schema.data, dtype=data_dtype)
        reasons.append(f"FOV {fov} has {layout.data.dtype} intensities")
    result[schema.data.name] = "read" if layout.data.dims == schema.data.dims else "transpose"

    for name, spec in schema.coords.items():
        mine = layout.coords.get(name)
        if mine is None:
            if _fillable(spec):
                result[name] = "fill"
            else:
                widen(name, promoted(spec), f"FOV {fov} lacks coordinate {name!r}")
            continue
        common = _common_dtype(spec, mine, fov)
        if common is None:
            raise StarfishBatchError(
                f"FOV {fov}: coordinate {name!r} holds {mine.dtype} where FOV "
                f"{schema.first_fov.get(name, '?')} has {spec.dtype}"
            )
        if common != STR and not (spec.is_str or np.dtype(common) == np.dtype(spec.dtype)):
            if spec.attrs.get("dtype") == "bool" or mine.attrs.get("dtype") == "bool":
                new = VarSpec(name, spec.dims, np.dtype(common), _decoded_attrs(spec.attrs))
                if new.dtype.kind == "f":
                    new.attrs["_FillValue"] = new.dtype.type(np.nan)
            else:
                new = dataclasses.replace(spec, dtype=np.dtype(common))
                if new.dtype.kind == "f" and "_FillValue" not in new.attrs:
                    new.attrs = {**new.attrs, "_FillValue": new.dtype.type(np.nan)}
            widen(name, new, f"FOV {fov} has coordinate {name!r} as {mine.dtype}")
            continue
        result[name] = "read"
    for name, spec in layout.coords.items():
        if name not in schema.coords:
            widen(name, promoted(spec), f"FOV {fov} has coordinate {name!r}, earlier FOVs not")
            wider.first_fov[name] = fov
    if reasons:
        raise SchemaChange(wider, "; ".join(reasons))
    return result


# ---------------------------------------------------------------------------------------
# reading


class StringTable:
    """The distinct strings of one block's string column, which holds their codes.

    Strings are never handled row by row in Python: a file's column is made fixed-width
    bytes, factorised with numpy, and written back as pointers into one buffer of the
    distinct values (``pointers``).
    """

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
        if (raw == raw[0]).all():  # the fov column, and any single-valued piece
            out[:] = self.code(bytes(raw[0]))
            return
        local, inverse = factorize_fixed(raw)
        lut = np.array([self.code(bytes(v)) for v in local], dtype=np.intp)
        out[:] = lut[inverse]

    def decoded(self) -> list[str]:
        return [v.decode("utf-8", "replace") for v in self.values]

    def pointers(self) -> tuple[np.ndarray, np.ndarray]:
        """(buffer, address of each value in it): NUL-terminated C strings for HDF5 to copy."""
        width = max((len(v) for v in self.values), default=0) + 1
        buffer = np.array(self.values or [b""], dtype=f"S{width}")
        addresses = np.uint64(buffer.ctypes.data) + \
            np.arange(len(buffer), dtype=np.uint64) * np.uint64(width)
        return buffer, addresses

    def clear(self) -> None:
        self.values = []
        self._index = {}


_HASH_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)


def factorize_fixed(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of a fixed-width bytes array (width a multiple of 8) and the inverse.

    Sorting 64-bit hashes of the values is several times faster than sorting the strings;
    a collision (checked) falls back to the latter.
    """
    words = np.ascontiguousarray(raw).view(np.uint64).reshape(len(raw), -1)
    hashed = words[:, 0].copy()
    for j in range(1, words.shape[1]):
        hashed *= _HASH_MULTIPLIER
        hashed ^= words[:, j]
    _, first, inverse = np.unique(hashed, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    local = raw[first]
    if not (local[inverse] == raw).all():
        local, inverse = np.unique(raw, return_inverse=True)
        inverse = inverse.reshape(-1)
    return local, inverse


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
        import h5py

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
                axes = [layout.data.dims.index(d) for d in schema.data.dims]
                f_axis = layout.data.dims.index(FEATURES)
                whole = np.moveaxis(h5.read(layout.data.name), f_axis, 0)
                order = [0] + [1 + [d for d in layout.data.dims if d != FEATURES].index(d)
                               for d in schema.data.dims[1:]]
                del axes
                buf[at: at + k] = np.transpose(whole, order)[start:stop]
            elif k:
                h5.read(name, buf[at: at + k], start, stop)
        block.size += k


# ---------------------------------------------------------------------------------------
# writing


class MergedWriter:
    """Appends blocks to a netCDF-4 file shaped like the per-FOV tables (unlimited features).

    netCDF4 creates the file (dimensions, variables, attributes, the static coordinates) with
    no feature; it is then closed and reopened with h5py, which appends the blocks to the
    datasets netCDF-C made. The file is netCDF-C's own layout (dimension scales, creation
    order, ``_Netcdf4Dimid``...), only the data are written by h5py: variable-length strings
    cost a quarter of what netCDF4 takes to write them. netCDF-C reads an unlimited
    dimension's length from the datasets that use it, so resizing them is all it needs.

    The string coordinates alone are created by h5py, attached to the ``features`` dimension
    scale as netCDF-C would: netCDF-C gives every string variable an explicit fill value,
    which makes HDF5 write one fill string per row before the row itself (half as much work
    again). They come after the other variables in the file's order, which readers ignore.
    """

    def __init__(self, path: Path, schema: Schema, chunk: int | None = None):
        import netCDF4

        self.schema = schema
        self.size = 0
        self.h5 = None
        chunk = chunk or CHUNK_FEATURES
        ds = netCDF4.Dataset(str(path), "w", format="NETCDF4")
        try:
            self._create(ds, chunk)
        finally:
            ds.close()
        import h5py

        self.h5py = h5py
        self.h5 = h5py.File(str(path), "r+", rdcc_nbytes=CHUNK_CACHE_BYTES, rdcc_nslots=61,
                            rdcc_w0=1.0)
        try:
            for spec in self._later:
                self._string_dataset(spec, chunk)
            self.vars = {name: self.h5[name] for name in self.names}
        except Exception:
            self.h5.close()
            raise

    def _string_dataset(self, spec: VarSpec, chunk: int) -> None:
        h5py = self.h5py
        dset = self.h5.create_dataset(spec.name, shape=(0,), maxshape=(None,), chunks=(chunk,),
                                      dtype=h5py.string_dtype("utf-8"))
        dset.dims[0].attach_scale(self.h5[FEATURES])
        for key, value in spec.attrs.items():
            if key not in ("_FillValue", "coordinates"):
                dset.attrs[key] = value

    def _create(self, ds, chunk: int) -> None:
        schema = self.schema
        ds.set_auto_maskandscale(False)
        ds.createDimension(FEATURES, None)
        for dim, size in schema.dim_sizes.items():
            ds.createDimension(dim, size)
        for spec, values in schema.static.values():
            var = self._variable(ds, spec, None)
            var[...] = values
        data_chunk = (max(1, chunk // max(1, int(np.prod(schema.data_shape())))),
                      *schema.data_shape())
        data_var = self._variable(ds, schema.data, data_chunk)
        self.names = [schema.data.name]
        self._later: list[VarSpec] = []
        for name, spec in schema.coords.items():
            if spec.is_str and name != FEATURES:
                self._later.append(spec)  # see the class docstring
            else:
                self._variable(ds, spec, (chunk,))
            self.names.append(name)
        coordinates = sorted(n for n in [*schema.coords, *schema.static]
                             if n not in schema.dim_sizes and n != FEATURES)
        data_var.setncattr("coordinates", " ".join(coordinates))

    @staticmethod
    def _variable(ds, spec: VarSpec, chunks):
        fill = spec.attrs.get("_FillValue")
        dtype = str if spec.is_str else np.dtype(spec.dtype)
        kwargs = {}
        if chunks is not None:
            kwargs["chunksizes"] = chunks
        if fill is not None and not spec.is_str:
            kwargs["fill_value"] = fill
        var = ds.createVariable(spec.name, dtype, spec.dims, **kwargs)
        for key, value in spec.attrs.items():
            if key not in ("_FillValue", "coordinates"):
                var.setncattr(key, value)
        return var

    def append(self, block: Block) -> None:
        n = block.size
        if not n:
            return
        h5s = self.h5py.h5s
        stop = self.size + n
        for name, dset in self.vars.items():
            dset.resize(stop, axis=0)
            codes = block.arrays[name][:n]
            if name not in block.strings:
                dset[self.size: stop] = codes
                continue
            # Variable-length strings: HDF5 copies each row's C string from the buffer. h5py
            # converts them into its own buffer first and frees only that copy (valgrind run
            # on a multi-block merge, HDF5 2.0 and h5py 3.16: no invalid read or free).
            buffer, addresses = block.strings[name].pointers()
            rows = np.ascontiguousarray(addresses[codes])
            fspace = dset.id.get_space()
            fspace.select_hyperslab((self.size,), (n,))
            dset.id.write(h5s.create_simple((n,)), fspace, rows, mtype=dset.id.get_type())
            del buffer  # alive until HDF5 has copied the strings
        self.size = stop

    def close(self) -> None:
        if self.h5 is not None:
            self.h5.close()
            self.h5 = None
