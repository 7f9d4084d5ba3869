"""``qc.png``: decoded spots per FOV, the most frequent targets and a map of all spots.

Drawn with Pillow on a numpy canvas rather than with matplotlib: importing matplotlib and
drawing these three panels took 0.4 s of CPU under Python's global lock, a quarter of a
200-FOV merge; this takes a few hundredths. The price is this module's small set of
primitives (bars, ticks at "nice" values, rotated labels, a legend), enough for a plot a
scientist reads at a glance, not a plotting library.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np

from starfish_batch.core.records import Summary

TOP_TARGETS = 20
WIDTH, HEIGHT = 1900, 600
TAB20 = ("#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896",
         "#9467bd", "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f", "#c7c7c7",
         "#bcbd22", "#dbdb8d", "#17becf", "#9edae5")
"""matplotlib's tab20 palette: the top targets' colours."""
OTHER = "#bfbfbf"
BLUE, GREEN, INK, GRID = "#1f77b4", "#2ca02c", "#000000", "#4d4d4d"
MAX_FOV_LABELS = 60
"""Above this many FOVs the per-FOV panel has numbered ticks instead of FOV names."""


def _rgb(color: str) -> tuple[int, int, int]:
    return tuple(int(color[i: i + 2], 16) for i in (1, 3, 5))


@functools.cache
def _font(size: int):
    from PIL import ImageFont  # lazy: PIL ~25 ms

    return ImageFont.load_default(size=size)


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Tick values at 1, 2 or 5 times a power of ten covering [lo, hi]."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        return []
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, target)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    count = int(math.floor((hi - first) / step + 1e-9)) + 1
    return [first + i * step for i in range(count)]


def tick_label(value: float, ticks: list[float]) -> str:
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else abs(value) or 1.0
    if step >= 1 and float(value).is_integer():
        return f"{value:,.0f}"
    decimals = max(0, -math.floor(math.log10(step)))
    return f"{value:,.{decimals}f}"


class _Axes:
    """A plot area in pixels and the data range it shows."""

    def __init__(self, canvas: _Canvas, box: tuple[int, int, int, int],
                 xlim: tuple[float, float], ylim: tuple[float, float], y_down: bool = False):
        self.canvas = canvas
        self.left, self.top, self.right, self.bottom = box
        self.xlim, self.ylim, self.y_down = xlim, ylim, y_down

    def px(self, x):
        lo, hi = self.xlim
        return self.left + (np.asarray(x, dtype=float) - lo) / ((hi - lo) or 1) * (self.right - self.left)

    def py(self, y):
        lo, hi = self.ylim
        frac = (np.asarray(y, dtype=float) - lo) / ((hi - lo) or 1)
        return self.top + frac * (self.bottom - self.top) if self.y_down \
            else self.bottom - frac * (self.bottom - self.top)

    def frame(self, title: str, xlabel: str = "", ylabel: str = "") -> None:
        c = self.canvas
        c.draw.rectangle((self.left, self.top, self.right, self.bottom), outline=INK)
        c.text(((self.left + self.right) / 2, self.top - 8), title, 15, anchor="md")
        if xlabel:
            c.text(((self.left + self.right) / 2, self.bottom + 42), xlabel, 13, anchor="mt")
        if ylabel:
            c.text_up((self.left - 62, (self.top + self.bottom) / 2), ylabel, 13)

    def xticks(self, ticks: list[float], labels: list[str] | None = None) -> None:
        labels = labels or [tick_label(t, ticks) for t in ticks]
        for t, label in zip(ticks, labels, strict=True):
            x = float(self.px(t))
            if self.left - 0.5 <= x <= self.right + 0.5:
                self.canvas.draw.line((x, self.bottom, x, self.bottom + 5), fill=INK)
                self.canvas.text((x, self.bottom + 8), label, 11, anchor="mt")

    def yticks(self, ticks: list[float], labels: list[str] | None = None) -> None:
        labels = labels or [tick_label(t, ticks) for t in ticks]
        for t, label in zip(ticks, labels, strict=True):
            y = float(self.py(t))
            if self.top - 0.5 <= y <= self.bottom + 0.5:
                self.canvas.draw.line((self.left - 5, y, self.left, y), fill=INK)
                self.canvas.text((self.left - 8, y), label, 11, anchor="rm")


class _Canvas:
    def __init__(self):
        from PIL import Image, ImageDraw  # lazy: PIL ~25 ms

        self.image = Image.new("RGB", (WIDTH, HEIGHT), "white")
        self.draw = ImageDraw.Draw(self.image)

    def text(self, xy, text: str, size: int, anchor: str = "la", fill: str = INK) -> None:
        self.draw.text(xy, text, font=_font(size), anchor=anchor, fill=fill)

    def text_up(self, xy, text: str, size: int, anchor: str = "mm") -> None:
        """Text turned 90 degrees anticlockwise, centred (``mm``) or ending (``rm``) at ``xy``."""
        from PIL import Image, ImageDraw  # lazy: PIL ~25 ms

        font = _font(size)
        left, top, right, bottom = font.getbbox(text)
        label = Image.new("L", (max(1, right - left), max(1, bottom - top)), 0)
        ImageDraw.Draw(label).text((-left, -top), text, font=font, fill=255)
        label = label.rotate(90, expand=True)
        x = int(xy[0] - label.width / 2)
        y = int(xy[1] - label.height / 2) if anchor == "mm" else int(xy[1])
        self.image.paste(INK, (x, y), label)

    def points(self, ax: _Axes, groups: list[tuple[np.ndarray, np.ndarray, str]],
               size: int) -> None:
        """Square dots of ``size`` pixels, clipped to the axes; later groups on top."""
        from PIL import Image  # lazy: PIL ~25 ms

        pixels = np.array(self.image)  # one round trip through numpy for every dot
        for x, y, color in groups:
            px = np.round(ax.px(x)).astype(np.int64) - size // 2
            py = np.round(ax.py(y)).astype(np.int64) - size // 2
            rgb = np.array(_rgb(color), dtype=np.uint8)
            for dx in range(size):
                for dy in range(size):
                    xs, ys = px + dx, py + dy
                    inside = (xs > ax.left) & (xs < ax.right) & (ys > ax.top) & (ys < ax.bottom)
                    pixels[ys[inside], xs[inside]] = rgb
        self.image.paste(Image.fromarray(pixels))


def _panel_boxes() -> list[tuple[int, int, int, int]]:
    """Three plot areas with the old figure's width ratios and room for labels."""
    ratios = np.array([1.3, 0.8, 1.1])
    left_margin, right_margin, gap = 90, 175, 170
    usable = WIDTH - left_margin - right_margin - 2 * gap
    widths = np.round(usable * ratios / ratios.sum()).astype(int)
    boxes = []
    x = left_margin
    for w in widths:
        boxes.append((x, 95, x + int(w), 470))
        x += int(w) + gap
    return boxes


def _fov_panel(c: _Canvas, box, summary: Summary) -> None:
    names = list(summary.fovs)
    counts = np.array([summary.fovs[f]["spots"] for f in names], dtype=float)
    top = float(counts.max()) * 1.05 if len(counts) and counts.max() > 0 else 1.0
    ax = _Axes(c, box, (-0.5, max(len(names), 1) - 0.5), (0.0, top))
    title = "decoded spots per FOV"
    if summary.fovs_without_spots:
        title += f" ({len(summary.fovs_without_spots)} without spots)"
    if summary.missing_fovs:
        title += f", {len(summary.missing_fovs)} missing"
    if len(names):
        edges = ax.px(np.arange(len(names) + 1) - 0.5)
        heights = ax.py(counts)
        width = (ax.right - ax.left) / len(names)
        pad = 0.1 * width if width >= 4 else 0.0
        if width >= 1:
            for i in range(len(names)):
                if counts[i] > 0:
                    c.draw.rectangle((edges[i] + pad, heights[i], edges[i + 1] - pad, ax.bottom),
                                     fill=BLUE)
        else:  # more FOVs than pixels: each pixel column shows its tallest FOV
            columns = np.floor(edges[:-1] - ax.left).astype(int)
            starts = np.flatnonzero(np.r_[True, columns[1:] != columns[:-1]])
            tallest = np.minimum.reduceat(heights, starts)
            for col, h in zip(columns[starts], tallest, strict=True):
                c.draw.line((ax.left + col, h, ax.left + col, ax.bottom), fill=BLUE)
        median = float(np.median(counts))
        y = float(ax.py(median))
        for x in range(ax.left, ax.right, 12):
            c.draw.line((x, y, min(x + 6, ax.right), y), fill=GRID, width=1)
        label = f"median {median:,.0f}"
        box = c.draw.textbbox((ax.right - 8, y + 4), label, font=_font(11), anchor="ra")
        c.draw.rectangle((box[0] - 3, box[1] - 2, box[2] + 3, box[3] + 2), fill="white")
        c.text((ax.right - 8, y + 4), label, 11, anchor="ra", fill=GRID)
    ax.frame(title, "" if len(names) <= MAX_FOV_LABELS else "FOV (manifest order)",
             "decoded spots")
    ax.yticks(nice_ticks(0.0, top))
    if 0 < len(names) <= MAX_FOV_LABELS:
        size = max(7, 11 - len(names) // 15)
        for i, name in enumerate(names):
            x = float(ax.px(i))
            c.draw.line((x, ax.bottom, x, ax.bottom + 4), fill=INK)
            c.text_up((x, ax.bottom + 7), name[:24], size, anchor="rm")
    elif names:
        ticks = [t for t in nice_ticks(0, len(names) - 1) if float(t).is_integer()]
        ax.xticks(ticks)


def _target_panel(c: _Canvas, box, summary: Summary) -> list[str]:
    top = list(summary.targets.items())[:TOP_TARGETS]
    left, upper, right, lower = box
    ax = _Axes(c, (left + 70, upper, right, lower), (0.0, 1.0), (-0.5, max(len(top), 1) - 0.5),
               y_down=True)
    names = [t for t, _ in top]
    if top:
        values = np.array([v["spots"] for _, v in top], dtype=float)
        ax.xlim = (0.0, max(1.0, float(values.max())) * 1.05)
        half = 0.4 * (ax.bottom - ax.top) / len(top)
        for i, value in enumerate(values):
            y = float(ax.py(i))
            c.draw.rectangle((ax.left, y - half, float(ax.px(value)), y + half), fill=GREEN)
            c.draw.line((ax.left - 4, y, ax.left, y), fill=INK)
            c.text((ax.left - 7, y), names[i][:18], 10, anchor="rm")
        ax.xticks(nice_ticks(0.0, ax.xlim[1], 4))
    ax.frame(f"top {len(top)} of {len(summary.targets)} targets", "decoded spots")
    return names


def _map_panel(c: _Canvas, box, summary: Summary, sample: dict | None, coordinate_kind: str | None,
               top_names: list[str]) -> None:
    if sample is None or not len(sample["x"]):
        c.text(((box[0] + box[2]) / 2, box[1] - 8), "no decoded spots", 15, anchor="md")
        return
    x = np.asarray(sample["x"], dtype=float)
    y = np.asarray(sample["y"], dtype=float)
    finite = np.isfinite(x) & np.isfinite(y)
    x, y, targets = x[finite], y[finite], np.asarray(sample["target"], dtype=object)[finite]
    left, top, right, bottom = box
    # equal aspect: the data range fills the box along its tighter direction
    span_x = float(np.ptp(x)) if len(x) else 1.0
    span_y = float(np.ptp(y)) if len(y) else 1.0
    span_x, span_y = span_x or 1.0, span_y or 1.0
    scale = min((right - left) / span_x, (bottom - top) / span_y) / 1.04
    cx = (float(x.min()) + float(x.max())) / 2 if len(x) else 0.0
    cy = (float(y.min()) + float(y.max())) / 2 if len(y) else 0.0
    half_w, half_h = (right - left) / 2 / scale, (bottom - top) / 2 / scale
    ax = _Axes(c, box, (cx - half_w, cx + half_w), (cy - half_h, cy + half_h), y_down=True)
    size = 2 if len(x) > 20_000 else 3
    code = {t: i for i, t in enumerate(top_names)}
    index = np.fromiter((code.get(t, -1) for t in targets), dtype=np.intp, count=len(targets))
    groups = [(x[index < 0], y[index < 0], OTHER)]
    for i in range(len(top_names)):
        sel = index == i
        groups.append((x[sel], y[sel], TAB20[i % len(TAB20)]))
    c.points(ax, groups, size)
    unit = "physical coordinates" if coordinate_kind == "physical" else "pixels"
    shown = len(x)
    note = "" if shown >= summary.n_spots else f", {shown:,} of {summary.n_spots:,} shown"
    ax.frame(f"decoded spots by target ({unit}{note})",
             "xc" if coordinate_kind == "physical" else "x",
             "yc" if coordinate_kind == "physical" else "y")
    ax.xticks(nice_ticks(*ax.xlim, 5))
    ax.yticks(nice_ticks(*ax.ylim, 5))
    # legend, right of the map
    entries = [(name, TAB20[i % len(TAB20)]) for i, name in enumerate(top_names)
               if (index == i).any()]
    if (index < 0).any():
        entries.append(("other targets", OTHER))
    row = min(18, (bottom - top) // max(1, len(entries)))
    y0 = (top + bottom) / 2 - row * len(entries) / 2
    for k, (name, color) in enumerate(entries):
        yk = y0 + k * row + row / 2
        c.draw.rectangle((right + 12, yk - 4, right + 20, yk + 4), fill=color)
        c.text((right + 26, yk), name[:20], 10, anchor="lm")


def render_qc_png(path: Path, summary: Summary, sample: dict | None,
                  coordinate_kind: str | None) -> None:
    c = _Canvas()
    c.text((WIDTH / 2, 22), f"run {summary.run_id}: {summary.n_fovs_merged} of "
           f"{summary.n_fovs} FOVs merged, {summary.n_features:,} features, "
           f"{summary.n_spots:,} decoded spots", 18, anchor="mt")
    fov_box, target_box, map_box = _panel_boxes()
    _fov_panel(c, fov_box, summary)
    top_names = _target_panel(c, target_box, summary)
    _map_panel(c, map_box, summary, sample, coordinate_kind, top_names)
    # zlib level 1: a few hundred KB more than the default, a fraction of the time
    c.image.save(str(path), format="PNG", compress_level=1)
