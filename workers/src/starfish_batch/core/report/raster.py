"""Pictures drawn on the server as PNG (numpy into zlib, no image library): the page's tissue,
cells and decoded-fraction maps, readable without JavaScript as ``<img src="data:...">``,
which the page's content-security policy allows (``img-src data:``)."""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np

PALETTE = np.array([
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
    (227, 119, 194), (23, 190, 207), (188, 189, 34), (127, 127, 127), (0, 0, 128), (128, 0, 0),
], dtype=np.uint8)
"""Colours of the top genes, in order (the rest are light grey)."""
OTHER = (200, 200, 200)
# a perceptual ramp from pale yellow to dark purple (counts, densities, fractions)
RAMP_STOPS = np.array([(255, 255, 217), (199, 233, 180), (65, 182, 196), (34, 94, 168), (37, 52, 148),
                       (8, 29, 88)], dtype=np.float64)


def ramp(t: np.ndarray) -> np.ndarray:
    """RGB of values in [0, 1] along ``RAMP_STOPS``."""
    t = np.clip(np.nan_to_num(np.asarray(t, np.float64)), 0, 1) * (len(RAMP_STOPS) - 1)
    i = np.minimum(t.astype(int), len(RAMP_STOPS) - 2)
    f = (t - i)[..., None]
    return (RAMP_STOPS[i] * (1 - f) + RAMP_STOPS[i + 1] * f).astype(np.uint8)


def ramp_css(t: float) -> str:
    r, g, b = ramp(np.array([t]))[0]
    return f"rgb({r},{g},{b})"


def png(rgb: np.ndarray) -> bytes:
    """An 8-bit RGB PNG of an (h, w, 3) uint8 array."""
    h, w, _ = rgb.shape
    raw = np.zeros((h, w * 3 + 1), np.uint8)  # filter byte 0 on each row
    raw[:, 1:] = rgb.reshape(h, w * 3)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)) + chunk(b"IEND", b""))


def data_uri(rgb: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png(rgb)).decode("ascii")


class Canvas:
    """An RGB image of the stage box ``(x0, x1, y0, y1)``, y down, ``width`` pixels wide."""

    def __init__(self, box, width: int, max_height: int, background=(255, 255, 255)):
        x0, x1, y0, y1 = box
        self.box = box
        self.scale = min(width / (x1 - x0), max_height / (y1 - y0))
        self.w = max(1, int(round((x1 - x0) * self.scale)))
        self.h = max(1, int(round((y1 - y0) * self.scale)))
        self.rgb = np.empty((self.h, self.w, 3), np.uint8)
        self.rgb[:] = background

    def px(self, x, y):
        x0, _, y0, _ = self.box
        return (np.clip(((np.asarray(x) - x0) * self.scale).astype(np.int64), 0, self.w - 1),
                np.clip(((np.asarray(y) - y0) * self.scale).astype(np.int64), 0, self.h - 1))

    def dots(self, x, y, colours, size: int = 2) -> None:
        """Squares of ``size`` pixels at the positions, later ones over earlier ones."""
        px, py = self.px(x, y)
        colours = np.broadcast_to(np.asarray(colours, np.uint8), (len(px), 3))
        for dx in range(size):
            for dy in range(size):
                self.rgb[np.minimum(py + dy, self.h - 1), np.minimum(px + dx, self.w - 1)] = colours

    def rects(self, extents, fills, outline) -> None:
        """Rectangles ``(x0, x1, y0, y1)``, filled with ``fills`` (one colour each, or None) and
        outlined with ``outline`` (or None); pixel positions computed all at once."""
        if not len(extents):
            return
        e = np.asarray(extents, np.float64)
        ax, ay = self.px(e[:, 0], e[:, 2])
        bx, by = self.px(e[:, 1], e[:, 3])
        rgb = self.rgb
        for k, (a, b, c, d) in enumerate(zip(ax.tolist(), bx.tolist(), ay.tolist(), by.tolist(), strict=True)):
            if fills is not None:
                rgb[c:d + 1, a:b + 1] = fills[k]
            if outline is not None:
                rgb[c, a:b + 1] = outline
                rgb[d, a:b + 1] = outline
                rgb[c:d + 1, a] = outline
                rgb[c:d + 1, b] = outline

    def rect_fill(self, ext, colour) -> None:
        (ax, bx), (ay, by) = self.px([ext[0], ext[1]], [ext[2], ext[3]])
        self.rgb[ay:by + 1, ax:bx + 1] = colour

    def rect_outline(self, ext, colour=(60, 60, 60)) -> None:
        (ax, bx), (ay, by) = self.px([ext[0], ext[1]], [ext[2], ext[3]])
        self.rgb[ay, ax:bx + 1] = colour
        self.rgb[by, ax:bx + 1] = colour
        self.rgb[ay:by + 1, ax] = colour
        self.rgb[ay:by + 1, bx] = colour

    def grid(self, counts: np.ndarray, w: int, h: int, side: float) -> None:
        """A density grid (``h`` x ``w`` squares of ``side`` stage units from the box's corner),
        log-scaled along the ramp; empty squares stay background."""
        x0, _, y0, _ = self.box
        grid = counts.reshape(h, w).astype(np.float64)
        top = np.log1p(grid.max()) or 1.0
        ys = np.clip(((np.arange(self.h) + 0.5) / self.scale / side).astype(int), 0, h - 1)
        xs = np.clip(((np.arange(self.w) + 0.5) / self.scale / side).astype(int), 0, w - 1)
        sampled = grid[ys[:, None], xs[None, :]]
        filled = sampled > 0
        self.rgb[filled] = ramp(0.15 + 0.85 * np.log1p(sampled[filled]) / top)
