"""The data of report.html's tissue, cells and decoding-QC sections, collected in the merge's one
pass over the transcripts (the rows it keeps), in memory that does not grow with the run.

``TissueCollector.add_block`` takes each block the merge counts (its coordinates, intensities,
string factors and decoded-spot mask) and keeps

- **points**: every decoded transcript (stage position ``xc``/``yc``, pixels where a table has
  none, and gene) while the run has at most ``MAX_POINTS`` of them; beyond that a per-gene
  uniform sample (each gene's ``k`` rows of smallest random key, ``k`` shrinking as genes
  appear), so a rare gene keeps all its transcripts and a common one a fair sample;
- **density**: a count of every decoded transcript per square of a grid whose side doubles
  whenever it has more than ``MAX_DENSITY_CELLS`` non-empty squares (exact counts, bounded
  memory, whatever the stage's size, which the merge does not know in advance);
- **QC**: a uniform sample (``MAX_QC_SAMPLE``) of every feature's decoding distance and
  intensity (its largest value over rounds and channels), with whether it decoded;
- the per-gene counts of decoded transcripts.

``payload()`` turns that into plain JSON (numbers and base64 arrays) that the page embeds and
the launcher reads back from ``report_tissue.json`` when it writes the page again; ``cells``
adds the cells of the merge's ``CellCounter``.
"""

from __future__ import annotations

import math

import numpy as np

from starfish_batch.core.report.payload import b64
from starfish_batch.merge.spots import row_intensity

MAX_POINTS = 200_000
"""Transcripts drawn one by one; above this the page has a sample of them over the density."""
MAX_DENSITY_CELLS = 1_000_000
DENSITY_SIDE = 384
"""The density grid on the page: at most this many squares along its longer side."""
MAX_QC_SAMPLE = 100_000
MAX_CELL_POINTS = 100_000
VERSION = 1


def _xy(arrays: dict):
    for xs, ys, kind in (("xc", "yc", "physical"), ("x", "y", "pixel")):
        if xs in arrays and ys in arrays:
            return np.asarray(arrays[xs], np.float64), np.asarray(arrays[ys], np.float64), kind
    return None, None, None


class TissueCollector:
    def __init__(self, max_points: int = MAX_POINTS, seed: int = 0):
        self.max_points = max_points
        self._rng = np.random.default_rng(seed)
        self.genes: dict[str, int] = {}
        self.gene_counts = np.zeros(0, np.int64)
        self.kind: str | None = None
        self.n_points = 0
        # points: random key, x, y, gene (the kept ones), and the pieces not yet pruned
        self._pts = {k: np.zeros(0, t) for k, t in
                     (("key", np.float64), ("x", np.float64), ("y", np.float64),
                      ("gene", np.int32))}
        self._pending: list[dict] = []
        self._pending_n = 0
        self._limit: np.ndarray | None = None
        """Per gene, the largest key of its sample once full (1 while it is not)."""
        self.per_gene: int | None = None
        """``k`` of the per-gene sample, once the run has more than ``max_points`` transcripts."""
        # density: keys (ix << 32 | iy, both offset) and counts on a grid of side ``cell``
        self.cell: float | None = None
        self._dkeys = np.zeros(0, np.int64)
        self._dcounts = np.zeros(0, np.int64)
        self._dpending: list[np.ndarray] = []
        self._dpending_n = 0
        # QC sample: key, distance, intensity, decoded
        self._qc = {"key": np.zeros(0), "distance": np.zeros(0, np.float32),
                    "intensity": np.zeros(0, np.float32), "decoded": np.zeros(0, bool)}
        self._qc_limit = 1.0
        self.has_distance = False
        self.n_features = 0
        self.error: str | None = None

    # -- during the pass ----------------------------------------------------------------

    def add_block(self, arrays: dict, data: np.ndarray | None, factors: dict, decoded: np.ndarray) -> None:
        """One block of the merge: ``arrays`` its coordinates, ``data`` its intensities, ``factors``
        (distinct values, codes) of its strings, ``decoded`` its decoded-spot mask. A fault here
        stops the collecting (the page then says so), never the merge."""
        if self.error is not None:
            return
        try:
            self._add_block(arrays, data, factors, decoded)
        except Exception as exc:  # noqa: BLE001 - the merge's outputs matter more than its page
            self.error = f"{type(exc).__name__}: {exc}"

    def _add_block(self, arrays, data, factors, decoded) -> None:
        n = len(decoded)
        if not n:
            return
        self.n_features += n
        self._add_qc(arrays, data, decoded)
        x, y, kind = _xy(arrays)
        if x is None or "target" not in factors or not decoded.any():
            return
        self.kind = self.kind or kind
        idx = np.flatnonzero(decoded & np.isfinite(x) & np.isfinite(y))
        if not len(idx):
            return
        t_names, t_codes = factors["target"]
        to_gene = np.array([self.genes.setdefault(t, len(self.genes)) for t in t_names], np.int32)
        gene = to_gene[t_codes[idx]]
        if len(self.genes) > len(self.gene_counts):
            self.gene_counts = np.concatenate([self.gene_counts,
                                               np.zeros(len(self.genes) - len(self.gene_counts), np.int64)])
        self.gene_counts += np.bincount(gene, minlength=len(self.genes))
        px, py = x[idx], y[idx]
        self._add_density(px, py)
        self.n_points += len(idx)
        key = self._rng.random(len(idx))
        if self._limit is not None:  # only the rows that would enter their gene's sample
            limit = np.ones(len(self.genes))
            limit[: len(self._limit)] = self._limit
            keep = key < limit[gene]
            key, px, py, gene = key[keep], px[keep], py[keep], gene[keep]
        self._pending.append({"key": key, "x": px, "y": py, "gene": gene})
        self._pending_n += len(key)
        if self._pending_n >= self.max_points:
            self._prune()

    def _prune(self) -> None:
        if not self._pending:
            return
        pts = {k: np.concatenate([self._pts[k]] + [p[k] for p in self._pending]) for k in self._pts}
        self._pending, self._pending_n = [], 0
        if len(pts["key"]) > self.max_points:
            self.per_gene = max(1, self.max_points // max(1, len(self.genes)))
            order = np.argsort(pts["gene"] + pts["key"])  # by gene, then key (keys are in [0, 1))
            g = pts["gene"][order]
            starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
            rank = np.arange(len(g)) - np.repeat(starts, np.diff(np.r_[starts, len(g)]))
            keep = np.sort(order[rank < self.per_gene])
            pts = {k: v[keep] for k, v in pts.items()}
            full = np.bincount(pts["gene"], minlength=len(self.genes)) >= self.per_gene
            self._limit = np.ones(len(self.genes))
            largest = np.zeros(len(self.genes))
            np.maximum.at(largest, pts["gene"], pts["key"])
            self._limit[full] = largest[full]
        self._pts = pts

    def _add_density(self, x: np.ndarray, y: np.ndarray) -> None:
        if self.cell is None:
            span = max(float(np.ptp(x)), float(np.ptp(y)))
            self.cell = span / 256 if span > 0 else 1.0
        self._dpending.append(self._cells(x, y))
        self._dpending_n += len(x)
        if self._dpending_n >= 1_000_000:
            self._consolidate()

    def _cells(self, x, y) -> np.ndarray:
        inv = 1.0 / self.cell  # + 2**30 first: truncation is then the floor (faster than np.floor)
        ix = (x * inv + (1 << 30)).astype(np.int64)
        ix <<= 32
        ix |= (y * inv + (1 << 30)).astype(np.int64)
        return ix

    def _consolidate(self) -> None:
        if self._dpending:
            fresh = np.concatenate(self._dpending)
            self._dpending, self._dpending_n = [], 0
            keys = np.concatenate([self._dkeys, fresh])
            weights = np.concatenate([self._dcounts, np.ones(len(fresh), np.int64)])
            self._dkeys, inverse = np.unique(keys, return_inverse=True)
            self._dcounts = np.bincount(inverse.ravel(), weights=weights, minlength=len(self._dkeys)).astype(np.int64)
        while len(self._dkeys) > MAX_DENSITY_CELLS:
            self._coarsen()

    def _coarsen(self, factor: int = 2) -> None:
        """Squares ``factor`` times larger: the same transcripts counted on a coarser grid."""
        ix = ((self._dkeys >> 32) - (1 << 30)) // factor + (1 << 30)
        iy = ((self._dkeys & 0xFFFFFFFF) - (1 << 30)) // factor + (1 << 30)
        self._dkeys, inverse = np.unique(ix << 32 | iy, return_inverse=True)
        self._dcounts = np.bincount(inverse.ravel(), weights=self._dcounts,
                                    minlength=len(self._dkeys)).astype(np.int64)
        self.cell *= factor

    def _add_qc(self, arrays: dict, data, decoded) -> None:
        n = len(decoded)
        key = self._rng.random(n)
        qc = self._qc
        rows = np.flatnonzero(key < self._qc_limit)  # only rows that would enter the sample
        if not len(rows):
            return
        distance = np.full(len(rows), np.nan, np.float32)
        if "distance" in arrays:
            self.has_distance = True
            distance = np.asarray(arrays["distance"][rows], np.float32)
        intensity = np.full(len(rows), np.nan, np.float32)
        if data is not None and data.size:
            intensity = row_intensity(np.asarray(data[rows])).astype(np.float32)
        new = {"key": key[rows], "distance": distance, "intensity": intensity, "decoded": decoded[rows]}
        merged = {k: np.concatenate([qc[k], new[k]]) for k in qc}
        if len(merged["key"]) > 2 * MAX_QC_SAMPLE:
            keep = np.argpartition(merged["key"], MAX_QC_SAMPLE)[:MAX_QC_SAMPLE]
            merged = {k: v[keep] for k, v in merged.items()}
            self._qc_limit = float(merged["key"].max())
        self._qc = merged

    # -- at the end ---------------------------------------------------------------------

    def points(self) -> dict[str, np.ndarray]:
        """The kept transcripts: every one when ``exact``, else the per-gene sample."""
        self._prune()
        return {k: v for k, v in self._pts.items() if k != "key"}

    @property
    def exact(self) -> bool:
        return self.per_gene is None

    def payload(self, fov_extents: dict[str, tuple[float, float, float, float]] | None = None,
                cells=None) -> dict:
        """Plain JSON for the page: see the module's docstring."""
        if self.error is not None:
            raise RuntimeError(f"collecting the tissue failed: {self.error}")
        pts = self.points()
        self._consolidate()
        genes = list(self.genes)
        out: dict = {"version": VERSION, "kind": self.kind, "n_transcripts": int(self.n_points),
                     "exact": self.exact, "n_features": int(self.n_features),
                     "genes": genes, "gene_counts": self.gene_counts.tolist()}
        # the stage box: every transcript and every FOV
        xs = [pts["x"]]
        ys = [pts["y"]]
        extents = {f: e for f, e in (fov_extents or {}).items() if e is not None}
        if extents:
            e = np.array(list(extents.values()), np.float64)
            xs += [e[:, 0], e[:, 1]]
            ys += [e[:, 2], e[:, 3]]
        if len(self._dkeys):
            ix = ((self._dkeys >> 32) - (1 << 30)).astype(np.float64)
            iy = ((self._dkeys & 0xFFFFFFFF) - (1 << 30)).astype(np.float64)
            xs += [np.array([ix.min(), ix.max() + 1]) * self.cell]
            ys += [np.array([iy.min(), iy.max() + 1]) * self.cell]
        allx, ally = np.concatenate(xs), np.concatenate(ys)
        if not len(allx):
            out["box"] = None
            return out
        x0, x1, y0, y1 = float(allx.min()), float(allx.max()), float(ally.min()), float(ally.max())
        if x1 <= x0:
            x1 = x0 + 1.0
        if y1 <= y0:
            y1 = y0 + 1.0
        out["box"] = [x0, x1, y0, y1]
        # points: positions as uint16 steps of the box (65,535 steps each way)
        qx = np.rint((pts["x"] - x0) / (x1 - x0) * 65535).astype(np.uint16)
        qy = np.rint((pts["y"] - y0) / (y1 - y0) * 65535).astype(np.uint16)
        order = np.argsort(pts["gene"], kind="stable")  # grouped by gene: a picked gene is one slice
        gene_sorted = pts["gene"][order]
        out["points"] = {"n": int(len(order)), "x": b64(qx[order]), "y": b64(qy[order]),
                         "gene_start": np.searchsorted(gene_sorted, np.arange(len(genes) + 1)).tolist()}
        if not self.exact:
            out["per_gene"] = int(self.per_gene)
        out["density"] = self._density_grid(x0, x1, y0, y1)
        out["fov_extents"] = {f: list(map(float, e)) for f, e in extents.items()}
        qc = self._qc
        out["qc"] = {"n": int(len(qc["key"])), "has_distance": self.has_distance,
                     "distance": b64(qc["distance"]), "intensity": b64(qc["intensity"]),
                     "decoded": b64(qc["decoded"].astype(np.uint8))}
        if cells is not None:
            out["cells"] = cells_payload(cells, x0, x1, y0, y1)
        return out

    def _density_grid(self, x0, x1, y0, y1) -> dict:
        """The density as a dense grid of at most ``DENSITY_SIDE`` squares along the box's longer side."""
        keys, counts, cell = self._dkeys, self._dcounts, self.cell or 1.0
        ix = ((keys >> 32) - (1 << 30)).astype(np.float64) * cell
        iy = ((keys & 0xFFFFFFFF) - (1 << 30)).astype(np.float64) * cell
        side = max(x1 - x0, y1 - y0) / DENSITY_SIDE
        side = max(side, cell)
        w = max(1, math.ceil((x1 - x0) / side))
        h = max(1, math.ceil((y1 - y0) / side))
        gx = np.clip(((ix + cell / 2 - x0) / side).astype(np.int64), 0, w - 1)
        gy = np.clip(((iy + cell / 2 - y0) / side).astype(np.int64), 0, h - 1)
        grid = np.bincount(gy * w + gx, weights=counts, minlength=w * h)
        # uint16: a square of more than 65,535 transcripts shows as that many (the darkest shade)
        return {"w": w, "h": h, "side": side, "counts": b64(np.minimum(grid, 65535).astype(np.uint16)),
                "max": int(grid.max()) if len(grid) else 0}


def cells_payload(cells, x0, x1, y0, y1) -> dict | None:
    """Centroids and transcript counts of the merge's ``CellCounter`` (its per-cell sums: x, y,
    features, decoded spots; its keys name each cell's FOV), and the cells per FOV."""
    n = int(getattr(cells, "n_cells", 0) or 0)
    if not n:
        return None
    sums = cells.sums[:n]
    fov_code = (cells._keys[:n] >> 32).astype(np.int64)
    names = list(cells.fov_names)
    per_fov = np.bincount(fov_code, minlength=len(names))
    spots = sums[:, 3].astype(np.int64)
    out = {"n": n, "kind": cells.kind, "fov_names": names, "per_fov": per_fov.tolist(),
           "spots": b64(spots.astype(np.uint32))}
    with np.errstate(invalid="ignore", divide="ignore"):
        cx, cy = sums[:, 0] / sums[:, 2], sums[:, 1] / sums[:, 2]
    ok = np.isfinite(cx) & np.isfinite(cy)
    if cells.kind is not None and ok.any():
        pick = np.flatnonzero(ok)
        if len(pick) > MAX_CELL_POINTS:
            pick = np.sort(np.random.default_rng(0).choice(pick, MAX_CELL_POINTS, replace=False))
        out["centroids"] = {
            "n": int(len(pick)),
            "x": b64(np.rint((np.clip(cx[pick], x0, x1) - x0) / (x1 - x0) * 65535).astype(np.uint16)),
            "y": b64(np.rint((np.clip(cy[pick], y0, y1) - y0) / (y1 - y0) * 65535).astype(np.uint16)),
            "spots": b64(spots[pick].astype(np.uint32)),
        }
    return out
