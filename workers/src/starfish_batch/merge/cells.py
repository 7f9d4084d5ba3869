"""``cells.h5ad``: the cell-by-gene matrix of a run whose recipe assigned spots to cells.

starfish's ``AssignTargets.Label`` gives each feature a ``cell_id`` (its mask's label, ``nan``
outside every cell). ``CellCounter`` takes the merged rows a block at a time and keeps, per
cell, its FOV, the sums of its features' positions and the counts of its decoded spots per
target (a decoded spot as in ``summary``); the AnnData file is written at the end:

- ``obs``: one row per cell, named ``<fov>:<cell>`` (a cell id is local to its FOV in
  starfish; these are unique across FOVs and are the ``cell_id`` of transcripts.parquet and
  the CSV), with ``fov``, ``cell_id`` (that same name, to join on), ``label`` (the recipe's
  own cell id, within its FOV), ``n_spots`` (decoded spots), ``n_features`` (every feature
  assigned to it) and the centroid in the tables' vocabulary: ``xc``, ``yc`` (stage units), or
  ``x``, ``y`` (pixels) where the tables have no stage position;
- ``var``: the targets of the tables that have ``cell_id``, in order of first appearance;
- ``X``: counts of decoded spots, sparse (CSR, float32 as scanpy expects);
- ``uns``: ``spatial_coordinates`` (``physical`` or ``pixel``) and what ``X`` counts.

It is written with h5py in AnnData's on-disk format, which ``anndata.read_h5ad`` (and
scanpy) read; the merge never imports anndata.
- ``obsm["spatial"]``: the cell's centroid, (x, y), the mean global physical position
  (``xc``, ``yc``; pixels when a table has none) of the features assigned to it: the masks
  themselves do not reach the merge.

Memory grows with the number of cells and of their non-zero counts (the output's size, 6
bytes a count), not with the number of features: a block's counts are added up as it comes
(``np.unique`` of 65,536 rows at most), and those of cells whose FOV is finished are final.
A FOV's features are contiguous in the merge, so only the last FOV of a block can go on in
the next one.
"""

from __future__ import annotations

import numpy as np

from starfish_batch.merge.parquet import CELL_SEPARATOR, global_cell_ids
from starfish_batch.merge.spots import MISSING_TARGETS

TARGET_BITS = 24
"""A count's key is ``cell << TARGET_BITS | target``."""
NO_CELL_ID = "no FOV's table has a cell_id (the recipe assigns no spots to cells): cells.h5ad not written"
NO_CELL_ASSIGNED = "no feature of any FOV is in a cell (every cell_id is nan): cells.h5ad not written"


class CellCounter:
    def __init__(self):
        self.fov_names: dict[str, int] = {}
        self.local_names: dict[str, int] = {}
        """The distinct FOV names and cell ids (a few hundred labels, the same in every FOV)."""
        self._keys = np.zeros(1024, dtype=np.int64)
        """Each cell as ``fov << 32 | cell id`` (codes into the two dictionaries above)."""
        self.n_cells = 0
        self._open_index: dict[int, int] = {}
        """Key -> index of the cells of the open FOV: the only ones a block can add to (a
        dictionary of every cell would be most of the counter's memory)."""
        self._closed: set[int] = set()
        self.targets: dict[str, int] = {}
        self.sums = np.zeros((0, 4), dtype=np.float64)
        """Per cell: sum of x, sum of y, number of features, number of decoded spots."""
        self._final: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        """Final counts, in pieces: (first cell, cell - first cell, target, count), uint16
        where that holds them (6 bytes a count; pieces, not one growing array, so that no
        copy of them all is ever made)."""
        self._n = 0
        self._ordered = True
        self._last_final = -1
        self._pending = (np.zeros(0, np.int64), np.zeros(0, np.int64))
        """Counts of the cells of the FOV that may go on in the next block."""
        self._open_fov: str | None = None
        self._open_from = 0
        """The FOV whose cells were registered last, and its first cell's index."""
        self.seen_cell_id = False
        self.kind: str | None = None

    def add_block(self, arrays: dict, factors: dict, decoded: np.ndarray,
                  last_fov: str | None = None) -> None:
        """Count one block. ``factors``: (distinct values, codes) of fov, target and cell_id;
        ``decoded``: the block's decoded-spot mask; ``last_fov``: its last FOV, the only one
        that may go on in the next block (None: any may, nothing is final yet)."""
        if "cell_id" not in factors:
            self._finish(last_fov)
            return
        self.seen_cell_id = True
        uniq, index = global_cell_ids(factors["fov"], factors["cell_id"])
        if not uniq:
            self._finish(last_fov)
            return
        fov_names, fov_codes = factors["fov"]
        cell_names, cell_codes = factors["cell_id"]
        first = np.full(len(uniq), -1, dtype=np.intp)  # a row of each cell, for its fov and id
        rows = np.flatnonzero(index >= 0)
        first[index[rows]] = rows
        to_global = np.empty(len(uniq), dtype=np.int64)
        for i in range(len(uniq)):
            fov = fov_names[fov_codes[first[i]]]
            key = (self.fov_names.setdefault(fov, len(self.fov_names)) << 32
                   | self.local_names.setdefault(cell_names[cell_codes[first[i]]],
                                                 len(self.local_names)))
            to_global[i] = self._index(fov, key)
        cells = to_global[index[rows]]
        if self.n_cells > len(self.sums):
            grown = np.zeros((max(self.n_cells, 2 * len(self.sums)), 4))
            grown[: len(self.sums)] = self.sums
            self.sums = grown
        x, y = self._xy(arrays)
        spots = decoded[rows]
        lo = int(cells.min())  # the block's cells: a short range of indices
        local = cells - lo
        here = self.sums[lo: lo + int(local.max()) + 1]
        size = len(here)
        if x is not None:
            here[:, 0] += np.bincount(local, weights=x[rows], minlength=size)
            here[:, 1] += np.bincount(local, weights=y[rows], minlength=size)
        here[:, 2] += np.bincount(local, minlength=size)
        here[:, 3] += np.bincount(local[spots], minlength=size)
        if spots.any() and "target" in factors:
            t_names, t_codes = factors["target"]
            t_global = np.array([self._target(t) for t in t_names], dtype=np.int64)
            keys, counts = np.unique(cells[spots] << TARGET_BITS | t_global[t_codes[rows[spots]]],
                                     return_counts=True)
            old_keys, old_counts = self._pending
            if len(old_keys):
                keys, inverse = np.unique(np.concatenate([old_keys, keys]), return_inverse=True)
                counts = np.bincount(inverse, weights=np.concatenate([old_counts, counts]))
            self._pending = (keys, counts.astype(np.int64))
        self._finish(last_fov)

    def _finish(self, last_fov: str | None) -> None:
        """Make final the pending counts of every cell but those of ``last_fov``."""
        keys, counts = self._pending
        if last_fov is None or not len(keys):
            return
        cut = len(keys)
        if last_fov == self._open_fov:
            cut = int(np.searchsorted(keys, self._open_from << TARGET_BITS))
        if not cut:
            return
        done = keys[:cut]
        targets = done & ((1 << TARGET_BITS) - 1)
        done_counts = counts[:cut]
        cells = done >> TARGET_BITS
        if cells[0] < self._last_final:
            self._ordered = False  # a cell went on after its FOV seemed done: sort at the end
        self._last_final = int(cells[-1])
        base = int(cells[0])
        self._final.append((
            base,
            (cells - base).astype(np.uint16 if cells[-1] - base < 1 << 16 else np.int64),
            targets.astype(np.uint16 if len(self.targets) <= 1 << 16 else np.int32),
            done_counts.astype(np.uint16 if done_counts.max() < 1 << 16 else np.int32)))
        self._n += cut
        self._pending = (keys[cut:], counts[cut:])

    def _index(self, fov: str, key: int) -> int:
        """The index of the cell ``key`` of ``fov``, registered when new."""
        if fov != self._open_fov:
            if self._open_fov is not None:
                self._closed.add(self.fov_names[self._open_fov])
            self._open_fov, self._open_from = fov, self.n_cells
            self._open_index = {}
            if key >> 32 in self._closed:  # a FOV seen before comes back: find its cells
                known = np.flatnonzero(self._keys[: self.n_cells] >> 32 == key >> 32)
                self._open_index = dict(zip(self._keys[known].tolist(), known.tolist(), strict=True))
                self._open_from = int(known[0]) if len(known) else self.n_cells
        g = self._open_index.get(key)
        if g is None:
            g = self._open_index[key] = self.n_cells
            if g == len(self._keys):
                self._keys = np.resize(self._keys, 2 * g)
            self._keys[g] = key
            self.n_cells += 1
        return g

    def _target(self, name: str) -> int:
        if name.strip().lower() in MISSING_TARGETS:
            return -1  # never a decoded spot
        return self.targets.setdefault(name, len(self.targets))

    def _xy(self, arrays: dict):
        for xs, ys, kind in (("xc", "yc", "physical"), ("x", "y", "pixel")):
            if xs in arrays and ys in arrays:
                self.kind = self.kind or kind
                return arrays[xs].astype(np.float64), arrays[ys].astype(np.float64)
        return None, None

    def why_none(self) -> str | None:
        """Why no cells.h5ad is written, or None when it is."""
        if not self.seen_cell_id:
            return NO_CELL_ID
        if not self.n_cells:
            return NO_CELL_ASSIGNED
        return None

    def _matrix(self):
        """CSR (data, indices, indptr) of the counts, built piece by piece (each freed once
        copied). Columns are targets in order of first appearance: each row's columns are
        then sorted already."""
        self._open_fov = None
        self._finish("")  # every FOV is finished
        n = self.n_cells
        per_cell = np.zeros(n, dtype=np.int64)
        indices = np.empty(self._n, dtype=np.int32)
        data = np.empty(self._n, dtype=np.float32)
        rows = None if self._ordered else np.empty(self._n, dtype=np.int64)
        at = 0
        self._final.reverse()
        while self._final:
            base, offsets, targets, counts = self._final.pop()
            cells = offsets.astype(np.int64) + base
            per_cell += np.bincount(cells, minlength=n)
            indices[at: at + len(cells)] = targets
            data[at: at + len(cells)] = counts
            if rows is not None:
                rows[at: at + len(cells)] = cells
            at += len(cells)
        if rows is not None:  # add up a cell's counts made final twice, and sort
            keys, inverse = np.unique(rows << 32 | indices, return_inverse=True)
            data = np.bincount(inverse, weights=data).astype(np.float32)
            indices = (keys & 0xFFFFFFFF).astype(np.int32)
            per_cell = np.bincount(keys >> 32, minlength=n)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(per_cell, out=indptr[1:])
        return data, indices, indptr

    def write_h5ad(self, path) -> None:
        """``cells.h5ad``, written with h5py in AnnData's on-disk format (anndata 0.8 and
        later read it): importing anndata and pandas would cost the merge 1.5 s and 60 MB."""
        import h5py  # lazy: h5py ~0.2 s

        data, indices, indptr = self._matrix()
        n = self.n_cells
        sums = self.sums[:n]
        fovs = list(self.fov_names)
        locals_ = list(self.local_names)
        fov_codes = (self._keys[:n] >> 32).astype(np.int32)
        local = [locals_[c] for c in (self._keys[:n] & 0xFFFFFFFF).tolist()]
        names = [f"{fovs[f]}{CELL_SEPARATOR}{cell}" for f, cell in zip(fov_codes.tolist(), local, strict=True)]
        with np.errstate(invalid="ignore", divide="ignore"):
            centroid = sums[:, :2] / sums[:, 2:3]
        n_spots = sums[:, 3]
        with h5py.File(str(path), "w") as f:
            _encode(f, "anndata", "0.1.0")
            x = f.create_group("X")
            _encode(x, "csr_matrix", "0.1.0")
            x.attrs["shape"] = np.array([n, len(self.targets)])
            x.create_dataset("data", data=data)
            x.create_dataset("indices", data=indices)
            x.create_dataset("indptr", data=indptr)
            xy = ["x", "y"] if self.kind == "pixel" else ["xc", "yc"]  # the tables' names (merge/columns.py)
            obs = _dataframe(f, "obs", "cell", names, ["fov", "cell_id", "label", "n_spots", "n_features", *xy])
            fov = obs.create_group("fov")
            _encode(fov, "categorical", "0.2.0")
            fov.attrs["ordered"] = False
            _strings(fov, "categories", fovs)
            _array(fov, "codes", fov_codes.astype(np.int32))
            _strings(obs, "cell_id", names)
            _strings(obs, "label", local)
            _array(obs, "n_spots", n_spots.astype(np.int64))
            _array(obs, "n_features", sums[:, 2].astype(np.int64))
            for j, column in enumerate(xy):
                _array(obs, column, np.ascontiguousarray(centroid[:, j]))
            _dataframe(f, "var", "target", list(self.targets), [])
            obsm = _dict(f, "obsm")
            _array(obsm, "spatial", centroid)
            for name in ("varm", "obsp", "varp", "layers"):
                _dict(f, name)
            uns = _dict(f, "uns")
            _string(uns, "spatial_coordinates", self.kind or "none")
            _string(uns, "counts", "decoded spots (passes_thresholds and a target) per cell and target")


def _encode(obj, kind: str, version: str) -> None:
    obj.attrs["encoding-type"] = kind
    obj.attrs["encoding-version"] = version


def _dict(parent, name: str):
    group = parent.create_group(name)
    _encode(group, "dict", "0.1.0")
    return group


def _array(parent, name: str, values: np.ndarray) -> None:
    _encode(parent.create_dataset(name, data=values), "array", "0.2.0")


def _strings(parent, name: str, values: list[str]) -> None:
    import h5py  # lazy: h5py ~0.2 s

    dset = parent.create_dataset(name, data=np.array(values, dtype=object),
                                 dtype=h5py.string_dtype("utf-8"))
    _encode(dset, "string-array", "0.2.0")


def _string(parent, name: str, value: str) -> None:
    import h5py  # lazy: h5py ~0.2 s

    _encode(parent.create_dataset(name, data=value, dtype=h5py.string_dtype("utf-8")),
            "string", "0.2.0")


def _dataframe(parent, name: str, index_name: str, index: list[str], columns: list[str]):
    import h5py  # lazy: h5py ~0.2 s

    group = parent.create_group(name)
    _encode(group, "dataframe", "0.2.0")
    group.attrs["_index"] = index_name
    group.attrs.create("column-order", np.array(columns, dtype=object),
                       dtype=h5py.string_dtype("utf-8"))
    _strings(group, index_name, index)
    return group
