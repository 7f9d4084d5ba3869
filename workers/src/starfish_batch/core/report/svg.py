"""The page's pictures as inline SVG, drawn on the server: readable without JavaScript, searchable
and zoomable by the browser, and no image file beside the page.

At most ``MAX_MARKS`` marks go on the FOV map: above that the FOVs are binned into cells, each
coloured by its worst status (failed, missing, empty, done), so the page stays a few MB however
large the experiment.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import NamedTuple

from starfish_batch.core.report.model import DONE, EMPTY, FAILED, MISSING, FovRow

MAX_MARKS = 12_000
SHADES = 5
"""Done FOVs are shaded in this many steps of decoded spots, up to the most spots of any FOV."""
MAX_NAMED = 64
"""Up to this many marks, each FOV's name is written on its mark (readable without hovering)."""
WORST_FIRST = (FAILED, MISSING, EMPTY, DONE)
MAP_WIDTH = 860
MAP_MAX_HEIGHT = 520
UNPLACED_CELL = 14
UNPLACED_SMALL_CELL = 6
"""The strip of FOVs without a position uses the small cells above 1,000 of them (a run just started)."""


def _n(value: float) -> str:
    """A coordinate with one decimal at most: the map's bytes are mostly numbers."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def shade_scale(spots: Sequence[int]) -> float:
    """The spot count of the darkest shade: the most spots of any done FOV."""
    return float(max((s for s in spots if s), default=0))


def shade_of(spots: float | None, top: float) -> int:
    """``0`` (lightest) to ``SHADES - 1`` (darkest), in proportion to ``spots / top``."""
    if not spots or top <= 0:
        return 0
    return min(SHADES - 1, int(SHADES * spots / top - 1e-9))


def _label(row: FovRow) -> str:
    if row.status in (DONE, EMPTY) and row.spots is not None:
        return f"{row.name}: {row.status}, {row.spots:,} spots"
    return f"{row.name}: {row.status}"


def fov_map(rows: Sequence[FovRow], max_marks: int = MAX_MARKS) -> tuple[str, dict]:
    """The FOV map and what it drew: ``{"marks", "aggregated", "placed", "unplaced"}``."""
    placed = [r for r in rows if r.extent is not None]
    unplaced = [r for r in rows if r.extent is None]
    top = shade_scale([r.spots or 0 for r in rows if r.status == DONE])
    parts: list[str] = []
    height = 0
    width = MAP_WIDTH
    aggregated = len(rows) > max_marks
    marks = 0
    if placed:
        frame = _Frame.around(placed)
        height = frame.span_y * frame.scale + 30
        parts.append(f'<text x="10" y="{_n(height - 8)}" class="ax">x {frame.x0:g} to {frame.x1:g}, '
                     f'y {frame.y0:g} to {frame.y1:g} (stage coordinates, y down)</text>')
        if not aggregated:
            height = _placed_marks(parts, placed, frame, top, height)
            marks += len(placed)
        else:
            marks += _placed_cells(parts, placed, len(rows), max_marks, frame, top)
    if unplaced:
        budget = max(1, max_marks - marks) if aggregated else None
        chunks, height = _unplaced_strip(parts, unplaced, height, budget, top)
        marks += chunks
    svg = (f'<svg id="fovmap" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{_n(height)}" '
           f'viewBox="0 0 {width} {_n(height)}" role="img" aria-label="FOV map">' + "".join(parts) + "</svg>")
    return svg, {"marks": marks, "aggregated": aggregated, "placed": len(placed), "unplaced": len(unplaced)}


class _Frame(NamedTuple):
    """Stage coordinates to the map's pixels: the placed FOVs' bounds, scaled to fit the map."""

    x0: float
    x1: float
    y0: float
    y1: float
    span_y: float
    scale: float

    @classmethod
    def around(cls, placed: Sequence[FovRow]) -> _Frame:
        x0 = min(r.extent[0] for r in placed)
        x1 = max(r.extent[1] for r in placed)
        y0 = min(r.extent[2] for r in placed)
        y1 = max(r.extent[3] for r in placed)
        span_x, span_y = (x1 - x0) or 1.0, (y1 - y0) or 1.0
        scale = min((MAP_WIDTH - 20) / span_x, MAP_MAX_HEIGHT / span_y)
        return cls(x0, x1, y0, y1, span_y, scale)

    def to_map(self, x: float, y: float) -> tuple[float, float]:
        return 10 + (x - self.x0) * self.scale, 4 + (y - self.y0) * self.scale

    def box(self, r: FovRow) -> tuple[float, float, float, float]:
        """A FOV's mark: x, y, width, height (at least a pixel, however small the FOV)."""
        return (10 + (r.extent[0] - self.x0) * self.scale, 4 + (r.extent[2] - self.y0) * self.scale,
                max(1.0, (r.extent[1] - r.extent[0]) * self.scale),
                max(1.0, (r.extent[3] - r.extent[2]) * self.scale))


def _placed_marks(parts: list[str], placed: Sequence[FovRow], frame: _Frame, top: float, height: float) -> float:
    """One mark per placed FOV, their overlaps and owned parts, and their names when few and
    large enough to read; returns the map's height (a legend line more when parts are owned)."""
    for r in placed:
        parts.append(_mark(*frame.box(r), r, top))
    for r in placed:  # where FOVs overlap, shaded, and the part each one owns (merge/overlap.py)
        for ox0, ox1, oy0, oy1 in r.overlaps or ():
            (ax, ay), (bx, by) = frame.to_map(ox0, oy0), frame.to_map(ox1, oy1)
            parts.append(f'<rect class="ovl" x="{_n(ax)}" y="{_n(ay)}" width="{_n(bx - ax)}" '
                         f'height="{_n(by - ay)}"><title>overlap of {escape(r.name)} with a neighbour'
                         f"</title></rect>")
    for r in placed:
        if r.owned is not None:
            parts.append(_owned(r, frame.to_map))
    if any(r.owned is not None for r in placed):
        parts.append(f'<text x="10" y="{_n(height + 6)}" class="ax">pale: where FOVs overlap; '
                     "dashed: the part each FOV owns (its transcripts there are kept)</text>")
        height += 14
    if len(placed) <= MAX_NAMED:
        for r in placed:
            bx, by, bw, bh = frame.box(r)
            if bw > 40 and bh > 14:
                parts.append(f'<text class="nm" x="{_n(bx + bw / 2)}" y="{_n(by + bh / 2 + 4)}" '
                             f'text-anchor="middle">{escape(r.name)}</text>')
    return height


def _placed_cells(parts: list[str], placed: Sequence[FovRow], n_rows: int, max_marks: int, frame: _Frame,
                  top: float) -> int:
    """The placed FOVs binned into a grid of cells (their share of ``max_marks``); returns the cells drawn."""
    side = max(1, int(math.sqrt(max_marks * len(placed) / n_rows)))
    cw, ch = (MAP_WIDTH - 20) / side, (frame.span_y * frame.scale) / side
    cells: dict[tuple[int, int], list[FovRow]] = {}
    for r in placed:
        bx, by, bw, bh = frame.box(r)
        key = (min(side - 1, int((bx - 10 + bw / 2) / cw)),
               min(side - 1, int((by - 4 + bh / 2) / max(ch, 1e-9))))
        cells.setdefault(key, []).append(r)
    for (i, j), members in cells.items():
        parts.append(_cell(10 + i * cw, 4 + j * ch, cw, ch, members, top))
    return len(cells)


def _unplaced_strip(parts: list[str], unplaced: Sequence[FovRow], height: float,
                    budget: int | None, spots_top: float) -> tuple[int, float]:
    """The FOVs without a stage position, in run order below the map (grouped into cells when
    the map is aggregated, to stay within ``budget`` marks); returns the marks drawn and the height."""
    top = height + 22
    parts.append(f'<text x="10" y="{_n(top - 6)}" class="ax">{len(unplaced):,} FOV(s) with no stage '
                 f'position known, in run order</text>')
    cell = UNPLACED_CELL if len(unplaced) <= 1000 else UNPLACED_SMALL_CELL
    per_row = (MAP_WIDTH - 20) // cell
    group = 1 if budget is None else math.ceil(len(unplaced) / budget)
    chunks = [unplaced[i:i + group] for i in range(0, len(unplaced), group)]
    for k, members in enumerate(chunks):
        x, y = 10 + (k % per_row) * cell, top + (k // per_row) * cell
        s = cell - 1 if cell < UNPLACED_CELL else cell - 2
        if group == 1:  # shaded on the map's scale of spots, as a placed FOV is
            parts.append(_mark(x, y, s, s, members[0], spots_top))
        else:
            parts.append(_cell(x, y, s, s, members, spots_top))
    return len(chunks), top + math.ceil(len(chunks) / per_row) * cell + 4


def _mark(x: float, y: float, w: float, h: float, row: FovRow, top) -> str:
    shade = f" d{shade_of(row.spots, top)}" if row.status == DONE else ""
    return (f'<rect class="m {row.status}{shade}" x="{_n(x)}" y="{_n(y)}" width="{_n(w)}" height="{_n(h)}">'
            f"<title>{escape(_label(row))}</title></rect>")


def _owned(row: FovRow, to_map) -> str:
    dropped = f"; {row.dropped:,} transcripts dropped as a neighbour's" if row.dropped else ""
    if not row.owned:
        return ""
    points = " ".join(f"{_n(a)},{_n(b)}" for a, b in (to_map(x, y) for x, y in row.owned))
    return (f'<polygon class="own" points="{points}"><title>{escape(row.name)} owns this region'
            f"{escape(dropped)}</title></polygon>")


def _cell(x: float, y: float, w: float, h: float, members: Sequence[FovRow], top) -> str:
    counts = {s: sum(1 for m in members if m.status == s) for s in WORST_FIRST}
    worst = next(s for s in WORST_FIRST if counts[s])
    shade = ""
    if worst == DONE:
        shade = f" d{shade_of(sum(m.spots or 0 for m in members) / len(members), top)}"
    what = ", ".join(f"{n:,} {s}" for s, n in counts.items() if n)
    names = ", ".join(m.name for m in members[:3]) + (" ..." if len(members) > 3 else "")
    return (f'<rect class="m agg {worst}{shade}" x="{_n(x)}" y="{_n(y)}" width="{_n(w)}" height="{_n(h)}">'
            f"<title>{len(members):,} FOVs ({what}): {escape(names)}</title></rect>")


def histogram(values: Sequence[float], unit: str, bins: int = 24, width: int = 420, height: int = 150,
              what: str = "FOVs") -> str:
    """A histogram of ``values`` with its range and count: the shape of a distribution."""
    import numpy as np  # lazy: numpy ~0.2 s

    arr = np.asarray([np.nan if v is None else v for v in values] if not isinstance(values, np.ndarray)
                     else values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if not len(arr):
        return '<p class="muted">no values recorded</p>'
    lo, hi = float(arr.min()), float(arr.max())
    step = (hi - lo) / bins or 1.0
    counts = np.bincount(np.minimum(bins - 1, ((arr - lo) / step).astype(np.int64)), minlength=bins).tolist()
    values = arr
    top = max(counts)
    plot_h = height - 30
    bar_w = (width - 20) / bins
    bars = []
    for i, c in enumerate(counts):
        if not c:
            continue
        h = max(1.0, c / top * plot_h)
        bars.append(f'<rect class="bar" x="{_n(10 + i * bar_w)}" y="{_n(5 + plot_h - h)}" '
                    f'width="{_n(bar_w - 1)}" height="{_n(h)}"><title>{lo + i * step:.3g} to '
                    f'{lo + (i + 1) * step:.3g} {unit}: {c:,}</title></rect>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="histogram ({unit})">' + "".join(bars)
            + f'<line x1="10" x2="{width - 10}" y1="{5 + plot_h}" y2="{5 + plot_h}" class="axl"/>'
            f'<text x="10" y="{height - 6}" class="ax">{lo:.3g} {unit}</text>'
            f'<text x="{width - 10}" y="{height - 6}" class="ax" text-anchor="end">{hi:.3g} {unit}</text>'
            f'<text x="{width // 2}" y="{height - 6}" class="ax" text-anchor="middle">'
            f'{len(values):,} {escape(what)}; tallest bar {top:,}</text></svg>')
