"""What a per-FOV table must hold, and the schema of the merged table that holds them all.

A per-FOV file is netCDF-4 (HDF5) as xarray writes a DecodedIntensityTable. Its *layout*
(which variables, their dimensions, dtypes and attributes, which one is the data variable)
is read with netCDF4 (``read_layout``), once for each distinct file structure (see
``reader``). The merged file's ``Schema`` starts as the first non-empty FOV's layout;
``plan`` says how each later file is read into it, and raises ``SchemaChange`` with a wider
schema when a file does not fit (the merge then restarts with it).

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

from starfish_batch.core.errors import StarfishBatchError

FEATURES = "features"
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
        import h5py  # lazy: h5py ~0.2 s

        if h5py.check_string_dtype(dtype) is not None:
            return STR
    return dtype


def read_layout(source: Path | bytes, label: str) -> Layout:
    """The layout of a per-FOV file (a path, or its bytes), with netCDF4: exact netCDF semantics."""
    import netCDF4  # lazy: netCDF4 ~1.4 s

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
