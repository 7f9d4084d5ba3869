"""Overlapping FOVs in the merge: each transcript and each cell kept by one FOV only.

The rule and the FOVs' extents come with the run (``manifest.overlap``, ``fov_layout.json``;
see ``starfish_batch.core.layout``). For each FOV the merge asks :meth:`OverlapFilter.keep` which
of its rows to keep, from the table's own stage coordinates (``xc``/``yc`` per feature) read
once per file, and drops the others from the block as they are read (:func:`compact`): every
output (netCDF, CSV, Parquet, h5ad, spatialdata) is written from the same kept rows. The
per-FOV files are not touched, so a run can be merged again under another rule.

- ``nearest``: a row is kept where its FOV owns its position; a row assigned to a cell
  (``cell_id``) is kept where its FOV owns the cell's centroid (the mean position of the
  cell's features), so a cell is kept whole by one FOV and dropped whole from the others.
- ``take-max`` (starfish's ``OverlapStrategy.TAKE_MAX``, for comparison): for each pair of
  overlapping FOVs, the one with more features in their overlap keeps it all, the other drops
  its features there (ties to the FOV listed first); neighbours come from the layout, so the
  pairs are O(n), not every pair of tables. It needs the counts first: one pass over the
  ``xc``/``yc`` columns (:meth:`OverlapFilter.prepare`).
- ``keep-all``: every row, as before.
"""

from __future__ import annotations

import numpy as np

from starfish_batch.core.layout import KEEP_ALL, TAKE_MAX, Decision, FovLayout, decide

MISSING_CELLS = frozenset({"", "nan", "none", "null"})


def compact(block, at: int, keep: np.ndarray) -> int:
    """Keep only the rows ``keep`` of those written at ``at`` in ``block`` (the last piece);
    returns how many were dropped."""
    k = len(keep)
    kept = int(np.count_nonzero(keep))
    if kept == k:
        return 0
    for arr in block.arrays.values():
        arr[at: at + kept] = arr[at: at + k][keep]
    block.size = at + kept
    fov, start, _ = block.fov_slices.pop()
    if kept:
        block.fov_slices.append((fov, start, at + kept))
    return k - kept


def _column(h5, name: str) -> np.ndarray | None:
    if name not in h5.datasets or len(h5.shape(name)) != 1:
        return None
    return h5.read(name)


def _cell_labels(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(has a cell, each row's cell index among the distinct cells) of a ``cell_id`` column."""
    if values.dtype.kind == "f":
        has = ~np.isnan(values)
        codes = np.zeros(len(values), dtype=np.intp)
        if has.any():
            _, codes[has] = np.unique(values[has], return_inverse=True)
        return has, codes
    if values.dtype.kind == "O":  # HDF5 strings as bytes objects: made fixed-width in C
        values = values.astype("S") if all(isinstance(v, bytes) for v in values[:1]) else values.astype(str)
    uniq, codes = np.unique(values, return_inverse=True)
    named = np.array([(u.decode("utf-8", "replace") if isinstance(u, bytes) else str(u)).strip().lower()
                      not in MISSING_CELLS for u in uniq.tolist()], dtype=bool)
    return named[codes] if len(uniq) else np.zeros(len(values), bool), codes.reshape(-1)


class OverlapFilter:
    """Decides, FOV by FOV, which rows of its table the merge keeps, and counts the others."""

    def __init__(self, decision: Decision):
        self.decision = decision
        self.layout: FovLayout | None = decision.layout if decision.rule != KEEP_ALL else None
        self.dropped: dict[str, int] = {}
        self.cells_dropped = 0
        self.cells_at_edge = 0
        self.without_xy: list[str] = []
        self._take_max_losses: dict[str, list[list[float]]] = {}
        """take-max: FOV -> the overlap rectangles it gives up."""

    @classmethod
    def for_run(cls, requested: str | None, layout: FovLayout | None) -> OverlapFilter:
        return cls(decide(requested, layout))

    @property
    def active(self) -> bool:
        return self.layout is not None

    @property
    def line(self) -> str:
        return self.decision.line

    # -- take-max needs every FOV's counts first -------------------------------------------

    def prepare(self, tables) -> None:
        """take-max: ``tables`` yields (fov, h5) for every FOV; counts each pair's overlap."""
        if not self.active or self.decision.rule != TAKE_MAX:
            return
        layout = self.layout
        counts: dict[tuple[str, str], int] = {}
        for fov, h5 in tables:
            x, y = _column(h5, "xc"), _column(h5, "yc")
            if x is None or y is None:
                continue
            for g in layout.neighbours.get(fov, ()):
                r = _intersection(layout.extents[fov], layout.extents[g])
                counts[fov, g] = int(np.count_nonzero(_inside(r, x, y)))
        order = {f: k for k, f in enumerate(layout.fovs)}
        for f, nbs in layout.neighbours.items():
            for g in nbs:
                mine, theirs = counts.get((f, g), 0), counts.get((g, f), 0)
                if theirs > mine or (theirs == mine and order[g] < order[f]):
                    self._take_max_losses.setdefault(f, []).append(
                        _intersection(layout.extents[f], layout.extents[g]))

    # -- per FOV ---------------------------------------------------------------------------

    def keep(self, fov: str, h5, n: int) -> np.ndarray | None:
        """The rows of ``fov``'s table (``n`` features) the merge keeps; None: all of them."""
        if not self.active or not n:
            return None
        x, y = _column(h5, "xc"), _column(h5, "yc")
        if x is None or y is None or len(x) != n:
            if self.layout.neighbours.get(fov):
                self.without_xy.append(fov)
            return None
        x = x.astype(np.float64, copy=False)
        y = y.astype(np.float64, copy=False)
        cells = _column(h5, "cell_id")
        labels = _cell_labels(cells) if cells is not None and len(cells) == n else None
        keep = None
        if not self.layout.neighbours.get(fov):
            pass
        elif self.decision.rule == TAKE_MAX:
            keep = np.ones(n, dtype=bool)
            for r in self._take_max_losses.get(fov, ()):
                keep &= ~_inside(r, x, y)
        else:
            keep = self._nearest(fov, x, y, labels)
        dropped = 0 if keep is None else n - int(np.count_nonzero(keep))
        if dropped:
            self.dropped[fov] = dropped
        if labels is not None:
            self._edge_cells(fov, labels, keep, x, y)
        return keep if dropped else None

    def _nearest(self, fov: str, x: np.ndarray, y: np.ndarray, labels) -> np.ndarray:
        if labels is None:
            return self.layout.owned_mask(fov, x, y)
        has, codes = labels
        px, py = x.copy(), y.copy()
        if has.any():
            c = codes[has]
            size = int(c.max()) + 1
            count = np.bincount(c, minlength=size)
            cx = np.bincount(c, weights=x[has], minlength=size) / np.maximum(count, 1)
            cy = np.bincount(c, weights=y[has], minlength=size) / np.maximum(count, 1)
            px[has], py[has] = cx[c], cy[c]  # a cell's rows go where its centroid goes
            owned = self.layout.owned_mask(fov, cx, cy)
            self.cells_dropped += int(np.count_nonzero((count > 0) & ~owned))
        return self.layout.owned_mask(fov, px, py)

    def _edge_cells(self, fov: str, labels, keep, x, y) -> None:
        """Count the kept cells with a feature within a pixel of their FOV's edge (may be cut)."""
        layout = self.layout
        if fov not in layout.extents:
            return
        has, codes = labels
        if keep is not None:
            has = has & keep
        if not has.any():
            return
        x0, x1, y0, y1 = layout.extents[fov]
        tol = layout.pixel_size or 0.0
        edge = (x <= x0 + tol) | (x >= x1 - tol) | (y <= y0 + tol) | (y >= y1 - tol)
        self.cells_at_edge += len(np.unique(codes[has & edge]))

    # -- for summary.json ------------------------------------------------------------------

    def report(self) -> dict:
        layout = self.decision.layout
        out: dict = {"rule": self.decision.rule, "line": self.line,
                     "transcripts_dropped": int(sum(self.dropped.values())),
                     "say": self.active or self.decision.notable or bool(self.without_xy)}
        if self.cells_dropped or self.cells_at_edge:
            out["cells_dropped"] = self.cells_dropped
            out["cells_touching_fov_edge"] = self.cells_at_edge
        if layout is not None and self.active:
            nothing = layout.owns_nothing()
            if nothing:
                out["fovs_owning_nothing"] = nothing
        if self.without_xy:
            out["fovs_without_xc_yc"] = self.without_xy
        return out

    def closing_line(self) -> str:
        """One line for the closing lines and report.html."""
        if not self.active:
            return self.line
        n = sum(self.dropped.values())
        head = self.line.split(":")[0]
        how = "by the nearest FOV" if self.decision.rule != TAKE_MAX else "by take-max"
        text = f"{head}: {n} transcripts in overlaps counted once, {how}"
        rest = self.line.split("; ", 1)
        if len(rest) == 2:
            text += "; " + rest[1]
        nothing = self.layout.owns_nothing()
        if nothing:
            f, g = next(iter(nothing.items()))
            text += (f"; {len(nothing)} FOVs own nothing (e.g. {f}, at the same place as {g}, "
                     "whose transcripts are kept)")
        if self.without_xy:
            text += f"; {len(self.without_xy)} FOV tables without xc/yc kept whole"
        return text

    def entry(self, fov: str) -> dict:
        """The per-FOV fields of summary.json: dropped rows and the owned region (report.html)."""
        out: dict = {}
        if fov in self.dropped:
            out["dropped"] = self.dropped[fov]
        if self.active and self.layout.neighbours.get(fov):
            region = self.layout.owned_region(fov)
            if region is not None:
                out["owned"] = region
            order = {f: k for k, f in enumerate(self.layout.fovs)}
            mine = self.layout.extents[fov]
            later = [g for g in self.layout.neighbours[fov] if order[g] > order[fov]]
            if later:  # each overlap once, with the FOV listed first: report.html shades them
                out["overlaps"] = [[round(v, 6) for v in _intersection(mine, self.layout.extents[g])]
                                   for g in later]
        return out


def _intersection(a, b) -> list[float]:
    return [max(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), min(a[3], b[3])]


def _inside(r, x, y) -> np.ndarray:
    return (x >= r[0]) & (x <= r[1]) & (y >= r[2]) & (y <= r[3])
