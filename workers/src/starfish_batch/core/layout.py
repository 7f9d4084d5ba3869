"""Where the FOVs lie on the stage, and which FOV owns each point where they overlap.

Computed once, when the launcher plans a run, from the stage extents (``xc``/``yc``) of each
FOV's primary tiles; written beside the manifest as ``fov_layout.json`` (pinned by the
manifest's ``layout_sha256``) so the merge applies it without reading the experiment again.

Ownership (``--overlap nearest``): a point belongs to the FOV whose centre is nearest among
the FOVs whose extent contains it (ties to the FOV listed first). On a regular grid every
overlap is split at its midline; on an irregular layout each FOV owns the Voronoi cell of its
centre clipped to its extent, and a point only one FOV imaged always stays with it (a small
FOV beside a large one never takes what it did not image). Only FOVs whose extents overlap
with a positive area are neighbours: FOVs that do not overlap merge exactly as before.

Neighbours are found with a k-d tree over the centres (O(n log n)); nothing here is O(n²).
This module knows neither AWS nor starfish.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping

import numpy as np

NEAREST = "nearest"
KEEP_ALL = "keep-all"
TAKE_MAX = "take-max"
RULES = (NEAREST, KEEP_ALL, TAKE_MAX)
LAYOUT_VERSION = 1


@dataclasses.dataclass
class FovLayout:
    """The FOVs' extents and their overlaps, in stage units (``xc``/``yc``)."""

    fovs: list[str]
    """Every FOV of the run, in manifest order (the tie-break order)."""
    extents: dict[str, list[float]]
    """FOV -> [x0, x1, y0, y1]; FOVs without usable coordinates are absent."""
    pixel_size: float | None = None
    """Stage units per pixel (from the tiles' shapes), to say overlaps in pixels; None if unknown."""
    neighbours: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    """FOV -> the FOVs whose extent overlaps its own with a positive area."""
    excluded: dict[str, str] = dataclasses.field(default_factory=dict)
    """FOV -> why ownership does not apply to it (its transcripts are all kept)."""

    # -- building --------------------------------------------------------------------------

    @classmethod
    def build(cls, fovs: list[str], extents: Mapping[str, list[float] | tuple | None],
              pixel_size: float | None = None) -> FovLayout:
        clean: dict[str, list[float]] = {}
        for fov in fovs:
            ext = extents.get(fov)
            if ext is not None and len(ext) == 4:
                x0, x1, y0, y1 = map(float, ext)
                if math.isfinite(x0 + x1 + y0 + y1):
                    clean[fov] = [min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)]
        layout = cls(list(fovs), clean, pixel_size)
        layout._find_neighbours()
        return layout

    def _find_neighbours(self) -> None:
        names = [f for f in self.fovs if f in self.extents]
        self.neighbours = {}
        if len(names) < 2:
            return
        # FOVs on exactly the same extent as another (synthetic data often puts every FOV at the
        # origin, or repeats a few): which copy is real cannot be told, so all are kept whole
        groups: dict[tuple, list[str]] = {}
        for f in names:
            groups.setdefault(tuple(self.extents[f]), []).append(f)
        for members in groups.values():
            if len(members) > 1:
                for f in members:
                    self.excluded[f] = "same place"
        names = [f for f in names if f not in self.excluded]
        if len(names) < 2:
            return
        ext = np.array([self.extents[f] for f in names])
        centres = np.column_stack([(ext[:, 0] + ext[:, 1]) / 2, (ext[:, 2] + ext[:, 3]) / 2])
        reach = float(max((ext[:, 1] - ext[:, 0]).max(), (ext[:, 3] - ext[:, 2]).max()))
        from scipy.spatial import cKDTree  # lazy: scipy ~0.6-1.4 s

        pairs = cKDTree(centres).query_pairs(reach, p=np.inf, output_type="ndarray")
        if not len(pairs):
            return
        i, j = pairs[:, 0], pairs[:, 1]
        ox = np.minimum(ext[i, 1], ext[j, 1]) - np.maximum(ext[i, 0], ext[j, 0])
        oy = np.minimum(ext[i, 3], ext[j, 3]) - np.maximum(ext[i, 2], ext[j, 2])
        real = (ox > 0) & (oy > 0)
        i, j, ox, oy = i[real], j[real], ox[real], oy[real]
        if not len(i):
            return
        # the widest strip (the narrower side of each overlap) and its share of that FOV's side
        strip = np.minimum(ox, oy)
        side = np.where(ox <= oy, ext[i, 1] - ext[i, 0], ext[i, 3] - ext[i, 2])
        k = int(np.argmax(strip))
        self._widest = (float(strip[k]), float(strip[k] / side[k]) if side[k] > 0 else 0.0)
        # FOVs inside another FOV listed before them, at the same centre: they own nothing
        a, b = np.concatenate([i, j]), np.concatenate([j, i])  # every pair both ways; names are in run order
        inner = (b < a) & (centres[a] == centres[b]).all(axis=1) & (ext[b, 0] <= ext[a, 0]) & \
            (ext[b, 1] >= ext[a, 1]) & (ext[b, 2] <= ext[a, 2]) & (ext[b, 3] >= ext[a, 3])
        self._nothing = {names[x]: names[y] for x, y in zip(a[inner].tolist(), b[inner].tolist(), strict=True)}
        order = np.lexsort((b, a))
        a, b = a[order], b[order]
        cuts = np.flatnonzero(np.diff(a)) + 1
        starts = np.concatenate([[0], cuts]).tolist()
        stops = np.concatenate([cuts, [len(a)]]).tolist()
        nb = b.tolist()
        for s0, s1, owner in zip(starts, stops, a[starts].tolist(), strict=True):
            self.neighbours[names[owner]] = [names[x] for x in nb[s0:s1]]

    # -- what it says ----------------------------------------------------------------------

    @property
    def overlaps(self) -> bool:
        return any(self.neighbours.values())

    def centre(self, fov: str) -> tuple[float, float]:
        x0, x1, y0, y1 = self.extents[fov]
        return (x0 + x1) / 2, (y0 + y1) / 2

    def largest_overlap(self) -> tuple[float, float]:
        """The widest overlap strip (stage units) and its share of the FOV's side there."""
        return getattr(self, "_widest", (0.0, 0.0))

    def describe_overlap(self) -> str:
        widest, share = self.largest_overlap()
        if self.pixel_size:
            amount = f"{widest / self.pixel_size:.0f} px"
        else:
            amount = f"{widest:.4g} stage units"
        return f"FOVs overlap by up to {amount} ({share * 100:.0f} %)"

    def owns_nothing(self) -> dict[str, str]:
        """FOV -> the FOV listed before it, at the same centre, whose extent holds all of it.

        A FOV always owns its own centre unless such a FOV exists (the only way, up to a
        boundary of no area, for it to own nothing)."""
        return dict(getattr(self, "_nothing", {}))

    # -- ownership -------------------------------------------------------------------------

    def owned_mask(self, fov: str, x: np.ndarray, y: np.ndarray) -> np.ndarray | None:
        """Which of the points (stage units) imaged by ``fov`` it owns; None: all of them."""
        nbs = self.neighbours.get(fov)
        if not nbs or fov not in self.extents:
            return None
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        order = {f: k for k, f in enumerate(self.fovs)}
        cx, cy = self.centre(fov)
        d_own = (x - cx) ** 2 + (y - cy) ** 2
        keep = np.ones(len(x), dtype=bool)
        for g in nbs:
            x0, x1, y0, y1 = self.extents[g]
            gx, gy = self.centre(g)
            d = (x - gx) ** 2 + (y - gy) ** 2
            closer = (d < d_own) | ((d == d_own) & (order[g] < order[fov]))
            keep &= ~(closer & (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))
        # a point without coordinates (NaN) compares False everywhere: it is kept
        return keep

    def owned_region(self, fov: str) -> list[list[float]] | None:
        """The polygon ``fov`` owns ([[x, y], ...]): its extent clipped by the bisector with
        each neighbour (exact on a grid; report.html draws it); None without an extent."""
        if fov not in self.extents:
            return None
        x0, x1, y0, y1 = self.extents[fov]
        poly = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        cx, cy = self.centre(fov)
        order = {f: k for k, f in enumerate(self.fovs)}
        for g in self.neighbours.get(fov, ()):
            gx, gy = self.centre(g)
            nx, ny = gx - cx, gy - cy
            if nx == 0 and ny == 0:
                if order[g] < order[fov]:
                    return []  # owns nothing where they overlap; drawn as nothing
                continue
            mid = ((cx + gx) / 2) * nx + ((cy + gy) / 2) * ny
            poly = _clip(poly, nx, ny, mid)
            if not poly:
                return []
        return [[round(px, 6), round(py, 6)] for px, py in poly]

    # -- storage ---------------------------------------------------------------------------

    def to_json(self) -> str:
        return json.dumps({"version": LAYOUT_VERSION, "fovs": self.fovs, "extents": self.extents,
                           "pixel_size": self.pixel_size}, separators=(",", ":")) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> FovLayout:
        data = json.loads(text)
        return cls.build(data["fovs"], data["extents"], data.get("pixel_size"))


def _clip(poly: list[tuple[float, float]], nx: float, ny: float, c: float) -> list[tuple[float, float]]:
    """Sutherland-Hodgman: the part of ``poly`` where ``nx*x + ny*y <= c``."""
    out = []
    n = len(poly)
    for k in range(n):
        p, q = poly[k], poly[(k + 1) % n]
        fp, fq = nx * p[0] + ny * p[1] - c, nx * q[0] + ny * q[1] - c
        if fp <= 0:
            out.append(p)
        if (fp < 0 < fq) or (fq < 0 < fp):
            t = fp / (fp - fq)
            out.append((p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])))
    return out


@dataclasses.dataclass
class Decision:
    """The rule the merge applies, and the one line that says which and why."""

    rule: str
    line: str
    layout: FovLayout | None = None
    notable: bool = False
    """Whether the line says something a scientist should read (not just "no overlap")."""


def _names(fovs: list[str], limit: int = 5) -> str:
    return ", ".join(fovs[:limit]) + (f" and {len(fovs) - limit} more" if len(fovs) > limit else "")


def decide(requested: str | None, layout: FovLayout | None) -> Decision:
    """The rule applied for ``--overlap requested`` (None: the default) on ``layout``."""
    if requested == KEEP_ALL:
        return Decision(KEEP_ALL, "overlaps: every FOV's transcripts kept (--overlap keep-all)", layout,
                        notable=layout is not None and layout.overlaps)
    if layout is None:
        return Decision(KEEP_ALL, "overlaps: the run recorded no FOV positions: every transcript kept "
                                  "(keep-all)")
    if not layout.extents:
        return Decision(KEEP_ALL, "overlaps: no FOV has stage coordinates (xc/yc): every transcript "
                                  "kept (keep-all)", layout, notable=len(layout.fovs) > 1)
    if len(layout.excluded) == len(layout.extents) and len(set(map(tuple, layout.extents.values()))) == 1:
        return Decision(KEEP_ALL, f"overlaps: all {len(layout.extents)} FOVs are at the same stage "
                                  "position (no usable coordinates): every transcript kept (keep-all)",
                        layout, notable=True)
    without = [f for f in layout.fovs if f not in layout.extents]
    tail = (f"; {len(without)} FOVs without stage coordinates keep all their transcripts "
            f"({_names(without)})" if without else "")
    if layout.excluded:
        same = list(layout.excluded)
        tail += (f"; {len(same)} FOVs lie exactly on another FOV (the same stage extent) and keep all "
                 f"their transcripts ({_names(same)})")
        without += same
    if not layout.overlaps:
        return Decision(KEEP_ALL, "overlaps: FOVs do not overlap: every transcript kept" + tail, layout,
                        notable=bool(without))
    rule = requested or NEAREST
    how = "by the nearest FOV" if rule == NEAREST else "by the FOV with more spots there (take-max)"
    return Decision(rule, f"{layout.describe_overlap()}: transcripts in overlaps counted once, {how}"
                    + tail, layout)
