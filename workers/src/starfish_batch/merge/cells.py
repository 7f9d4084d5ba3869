"""``cells.h5ad``: the cell-by-gene matrix of a run whose recipe assigned spots to cells.

starfish's ``AssignTargets.Label`` gives each feature a ``cell_id`` (its mask's label, ``nan``
outside every cell). ``CellCounter`` takes the merged rows a block at a time and keeps, per
cell, its FOV, the sums of its features' positions and the counts of its decoded spots per
target (a decoded spot as in ``summary``); the AnnData file is written at the end:

- ``obs``: one row per cell, named ``<fov>:<cell>`` (a cell id is local to its FOV in
  starfish; these are unique across FOVs and are the ``cell_id`` of transcripts.parquet),
  with ``fov``, the recipe's ``cell_id``, ``n_spots`` (decoded spots) and ``n_features``
  (every feature assigned to it);
- ``var``: the targets of the run's decoded spots, sorted;
- ``X``: counts of decoded spots, sparse (CSR, float32 as scanpy expects);
- ``obsm["spatial"]``: the cell's centroid, (x, y), the mean global physical position
  (``xc``, ``yc``; pixels when a table has none) of the features assigned to it: the masks
  themselves do not reach the merge.

Memory grows with the number of cells and of their non-zero counts (the output's size, 8
bytes a count), not with the number of features: a block's counts are added up as it comes
(``np.unique`` of 65,536 rows at most), and those of cells whose FOV is finished are final.
A FOV's features are contiguous in the merge, so only the last FOV of a block can go on in
the next one.
"""

from __future__ import annotations

import numpy as np

from starfish_batch.merge.parquet import global_cell_ids
from starfish_batch.merge.spots import MISSING_TARGETS

TARGET_BITS = 24
"""A count's key is ``cell << TARGET_BITS | target``."""
NO_CELL_ID = "no FOV's table has a cell_id (the recipe assigns no spots to cells): cells.h5ad not written"
NO_CELL_ASSIGNED = "no feature of any FOV is in a cell (every cell_id is nan): cells.h5ad not written"


class CellCounter:
    def __init__(self):
        self.index: dict[str, int] = {}
        """Cell name -> its index (in order: the names are its keys)."""
        self.fov_names: dict[str, int] = {}
        self._fov_of = np.zeros(1024, dtype=np.int32)
        """Each cell's FOV, as an index into ``fov_names``; its own id is the rest of its name."""
        self.targets: dict[str, int] = {}
        self.sums = np.zeros((0, 3), dtype=np.float64)
        """Per cell: sum of x, sum of y, number of features."""
        self._final: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        """Final counts, in pieces: (cell, target, count), int32, and uint16 where that holds
        them (8 bytes a count; pieces, not one growing array, so that no copy of them all is
        ever made)."""
        self._n = 0
        self._ordered = True
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
        fov_names = factors["fov"][0]
        first = np.full(len(uniq), -1, dtype=np.intp)  # a row of each cell, for its fov and id
        rows = np.flatnonzero(index >= 0)
        first[index[rows]] = rows
        to_global = np.empty(len(uniq), dtype=np.int64)
        for i, name in enumerate(uniq):
            g = self.index.get(name)
            if g is None:
                g = self.index[name] = len(self.index)
                fov = fov_names[factors["fov"][1][first[i]]]
                if g == len(self._fov_of):
                    self._fov_of = np.resize(self._fov_of, 2 * g)
                self._fov_of[g] = self.fov_names.setdefault(fov, len(self.fov_names))
                if fov != self._open_fov:
                    self._open_fov, self._open_from = fov, g
            to_global[i] = g
        cells = to_global[index[rows]]
        if len(self.index) > len(self.sums):
            grown = np.zeros((max(len(self.index), 2 * len(self.sums)), 3))
            grown[: len(self.sums)] = self.sums
            self.sums = grown
        x, y = self._xy(arrays)
        n = len(self.sums)
        if x is not None:
            self.sums[:, 0] += np.bincount(cells, weights=x[rows], minlength=n)
            self.sums[:, 1] += np.bincount(cells, weights=y[rows], minlength=n)
        self.sums[:, 2] += np.bincount(cells, minlength=n)

        spots = decoded[rows]
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
        if self._final and done[0] >> TARGET_BITS < self._final[-1][0][-1]:
            self._ordered = False  # a cell went on after its FOV seemed done: sort at the end
        targets = done & ((1 << TARGET_BITS) - 1)
        done_counts = counts[:cut]
        self._final.append((
            (done >> TARGET_BITS).astype(np.int32),
            targets.astype(np.uint16 if len(self.targets) <= 1 << 16 else np.int32),
            done_counts.astype(np.uint16 if done_counts.max() < 1 << 16 else np.int32)))
        self._n += cut
        self._pending = (keys[cut:], counts[cut:])

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

    @property
    def n_cells(self) -> int:
        return len(self.index)

    def why_none(self) -> str | None:
        """Why no cells.h5ad is written, or None when it is."""
        if not self.seen_cell_id:
            return NO_CELL_ID
        if not self.index:
            return NO_CELL_ASSIGNED
        return None

    def to_anndata(self):
        import anndata as ad
        import pandas as pd
        import scipy.sparse as sp

        self._open_fov = None
        self._finish("")  # every FOV is finished
        order = sorted(self.targets, key=str)
        remap = np.empty(len(self.targets), dtype=np.int32)
        for new, name in enumerate(order):
            remap[self.targets[name]] = new
        n = self.n_cells
        # CSR straight from the pieces, each freed once copied: cells are in order
        per_cell = np.zeros(n, dtype=np.int64)
        indices = np.empty(self._n, dtype=np.int32)
        data = np.empty(self._n, dtype=np.float32)
        rows = None if self._ordered else np.empty(self._n, dtype=np.int32)
        at = 0
        self._final.reverse()
        while self._final:
            cells, targets, counts = self._final.pop()
            per_cell += np.bincount(cells, minlength=n)
            indices[at: at + len(cells)] = remap[targets]
            data[at: at + len(cells)] = counts
            if rows is not None:
                rows[at: at + len(cells)] = cells
            at += len(cells)
        if rows is not None:
            x = sp.coo_matrix((data, (rows, indices)), shape=(n, len(order))).tocsr()
        else:
            indptr = np.zeros(n + 1, dtype=np.int64)
            np.cumsum(per_cell, out=indptr[1:])
            x = sp.csr_matrix((data, indices, indptr), shape=(n, len(order)), copy=False)
        x.has_sorted_indices = False  # the targets were renumbered by name
        x.sum_duplicates()  # sorts each row's columns too (in place)
        sums = self.sums[:n]
        names = list(self.index)
        self.index = {}
        fov = pd.Categorical.from_codes(self._fov_of[:n], categories=list(self.fov_names))
        with np.errstate(invalid="ignore", divide="ignore"):
            centroid = sums[:, :2] / sums[:, 2:3]
        obs = pd.DataFrame({
            "fov": fov,
            "cell_id": [name[len(f) + 1:] for name, f in zip(names, fov, strict=True)],
            "n_spots": np.asarray(x.sum(axis=1)).ravel().astype(np.int64),
            "n_features": sums[:, 2].astype(np.int64),
        }, index=pd.Index(names, name="cell"))
        var = pd.DataFrame(index=pd.Index(order, name="target"))
        adata = ad.AnnData(X=x, obs=obs, var=var)
        adata.obsm["spatial"] = centroid
        adata.uns["spatial_coordinates"] = self.kind or "none"
        adata.uns["counts"] = "decoded spots (passes_thresholds and a target) per cell and target"
        return adata
