"""The merged netCDF file, written a block at a time.

``MergedWriter`` has netCDF4 create the file, then appends blocks with h5py (a quarter of
netCDF4's time for variable-length strings) to a file with an unlimited ``features``
dimension, variables of the same types and attributes as the per-FOV files (strings stay
variable-length, which xarray reads back as ``<U``), so the merged file decodes like the
tables it came from.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np

from starfish_batch.core import storage
from starfish_batch.merge.reader import Block
from starfish_batch.merge.schema import FEATURES, Schema, VarSpec
from starfish_batch.merge.strings import write_strings

CHUNK_FEATURES = 1 << 15
"""HDF5 chunk length along ``features`` of the merged file."""
CHUNK_CACHE_BYTES = 2 << 20
_ABANDONED: list = []
"""Files whose close failed even after ``MergedWriter.abort``: freeing them, or HDF5's own
clean-up at exit, would crash the process, so it ends with ``os._exit`` (see ``abandoned``)."""


def abandoned() -> bool:
    """Whether a file could not be closed: the process must then end without the interpreter's
    clean-up (``os._exit``), which would make HDF5 crash (exit 139) after the error line."""
    return bool(_ABANDONED)


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
        import netCDF4  # lazy: netCDF4 ~1.4 s

        self.schema = schema
        self.size = 0
        self.h5 = None
        chunk = chunk or CHUNK_FEATURES
        try:
            ds = netCDF4.Dataset(str(path), "w", format="NETCDF4")
            try:
                self._create(ds, chunk)
            finally:
                ds.close()
        except Exception as exc:  # netCDF-C says only "HDF error" when the disk is full
            if storage.no_space_left(exc, path):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from exc
            raise
        import h5py  # lazy: h5py ~0.2 s

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
        stop = self.size + n
        for name, dset in self.vars.items():
            dset.resize(stop, axis=0)
            codes = block.arrays[name][:n]
            if name in block.strings:
                write_strings(dset, self.size, block.strings[name].values, codes)
            else:
                dset[self.size: stop] = codes
        self.size = stop

    def close(self) -> None:
        """Flush, then close: a write error (a full disk) surfaces in the flush, while every
        HDF5 object is still valid, and the file is then abandoned with ``abort``."""
        if self.h5 is None:
            return
        try:
            self.h5.flush()
        except BaseException:
            self.abort()
            raise
        h5, self.h5 = self.h5, None
        self.vars = {}
        h5.close()

    def abort(self) -> None:
        """Close a file that will be deleted, after a failure, without crashing the process.

        When HDF5 cannot write what it holds in its caches (a full disk), ``File.close``
        fails half-way and leaves h5py objects that crash the interpreter when they are
        garbage-collected (merge exit 139). So the file is first truncated to nothing, which
        gives its space back, and HDF5's last writes land in a sparse file that is deleted
        afterwards; should the close still fail, the objects are kept alive (never freed).
        """
        if self.h5 is None:
            return
        h5, self.h5 = self.h5, None
        try:  # before anything is released: releasing a dataset makes HDF5 write its chunks
            os.ftruncate(h5.id.get_vfd_handle(), 0)
        except Exception:  # noqa: S110 - a driver without a descriptor: the close may still work
            pass
        try:
            h5.close()
        except Exception:  # HDF5's cache is broken after a failed flush ("slist already enabled")
            _ABANDONED.append((h5, self.vars))
        self.vars = {}
