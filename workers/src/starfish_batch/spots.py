"""``decoded_spots.csv.gz``: one row per feature of the merged table, written a block at a time.

Columns: ``fov, target, distance, passes_thresholds, xc, yc, zc, x, y, z, radius, intensity``.

- ``xc, yc, zc`` are physical coordinates, ``x, y, z`` pixel coordinates, as in the table;
- ``intensity`` is the feature's largest intensity over all rounds and channels (NaN where
  every value is NaN); the table's own ``intensity`` coordinate, when it has one, is the spot
  finder's measure in the reference image and is not this;
- ``passes_thresholds`` is ``True``/``False``; a coordinate the table lacks gives empty
  cells (``fov`` then comes from the FOV name);
- floating-point numbers are written in fixed point with 7 significant digits of the
  column's largest magnitude in the block (at most 10 decimals), trailing zeros dropped;
  NaN is an empty cell.

Formatting is vectorised on byte matrices (no per-row Python, no pandas): each field is
rendered into a fixed-width column of a ``(rows, width)`` uint8 matrix padded with NUL
bytes, and the CSV text is that matrix with the NULs removed. numpy releases the GIL for
these operations, so a block is formatted and compressed on a second thread while the
next one is read.
"""

from __future__ import annotations

import zlib
from typing import BinaryIO

import numpy as np

COLUMNS = ("fov", "target", "distance", "passes_thresholds", "xc", "yc", "zc",
           "x", "y", "z", "radius", "intensity")
SIGNIFICANT = 7
MAX_DECIMALS = 10
GZIP_LEVEL = 1
"""zlib level 1: a tenth larger than level 3, half the time (the CSV thread is the busier one)."""

_ZERO, _DOT, _MINUS, _COMMA, _NEWLINE, _QUOTE = 48, 46, 45, 44, 10, 34


def _digits(values: np.ndarray, width: int | None = None) -> np.ndarray:
    """Decimal digits of non-negative integers as a (n, width) matrix of ASCII bytes."""
    top = int(values.max()) if values.size else 0
    width = width or max(1, len(str(top)))
    dtype = np.uint32 if top < 2**32 else np.uint64
    x = values.astype(dtype, copy=True)
    out = np.empty((len(values), width), dtype=np.uint8)
    for j in range(width - 1, -1, -1):
        x, r = np.divmod(x, 10)
        out[:, j] = r
    out += _ZERO
    return out


def _drop_leading_zeros(m: np.ndarray, keep_last: int = 1) -> None:
    if m.shape[1] > keep_last:
        head = m[:, : m.shape[1] - keep_last]
        head[np.logical_and.accumulate(head == _ZERO, axis=1)] = 0


def format_int(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind == "f":
        return format_float(values)
    v = values.astype(np.int64)
    neg = v < 0
    m = _digits(np.abs(v))
    _drop_leading_zeros(m)
    if neg.any():
        m = np.concatenate([np.where(neg, _MINUS, 0).astype(np.uint8)[:, None], m], axis=1)
    return m


def format_float(values: np.ndarray, significant: int = SIGNIFICANT) -> np.ndarray:
    """Fixed point, ``significant`` digits of the largest magnitude; NaN -> empty."""
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    if not finite.any():
        return np.zeros((len(v), 1), dtype=np.uint8)
    a = np.where(finite, np.abs(v), 0.0)
    top = float(a.max())
    int_digits = int(np.floor(np.log10(top))) + 1 if top > 0 else 1
    decimals = min(max(significant - int_digits, 0), MAX_DECIMALS)
    if top * 10.0**decimals >= 2**62:  # too large for fixed point in int64: plain repr
        text = np.where(finite, v, 0.0).astype(str)
        text[~finite] = ""
        return format_strings(text)
    q = np.rint(a * 10.0**decimals).astype(np.int64)
    m = _digits(q, max(len(str(int(q.max()))), decimals + 1))
    if decimals:
        ip, fp = m[:, : m.shape[1] - decimals], m[:, m.shape[1] - decimals:]
        _drop_leading_zeros(ip)
        trailing = np.logical_and.accumulate((fp == _ZERO)[:, ::-1], axis=1)[:, ::-1]
        fp[trailing] = 0
        dot = np.where(trailing[:, 0], 0, _DOT).astype(np.uint8)[:, None]
        m = np.concatenate([ip, dot, fp], axis=1)
    else:
        _drop_leading_zeros(m)
    neg = (v < 0) & (q > 0)
    if neg.any():
        m = np.concatenate([np.where(neg, _MINUS, 0).astype(np.uint8)[:, None], m], axis=1)
    if not finite.all():
        m[~finite] = 0
        inf = np.isinf(v)
        if inf.any():
            text = np.where(v[inf] > 0, b"inf", b"-inf").astype("S4")
            m = np.concatenate([m, np.zeros((len(v), 4), np.uint8)], axis=1)
            m[inf] = 0
            m[inf, :4] = text.view(np.uint8).reshape(-1, 4)
    return m


def format_bool(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values)
    out = np.zeros((len(v), 5), dtype=np.uint8)
    if v.dtype.kind == "f":
        known = ~np.isnan(v)
        true = known & (v != 0)
        false = known & (v == 0)
    else:
        true = v.astype(bool)
        false = ~true
    out[true, :4] = np.frombuffer(b"True", np.uint8)
    out[false] = np.frombuffer(b"False", np.uint8)
    return out


def _quote(text: str) -> str:
    if any(ch in text for ch in ',"\n\r') or text != text.strip():
        return '"' + text.replace('"', '""') + '"'
    return text


MISSING_TARGETS = frozenset({"", "nan", "none", "null"})
"""Target values that mean "not decoded" (compared lower-case)."""


def factorize(values: np.ndarray) -> tuple[list[str], np.ndarray]:
    """The distinct strings of ``values`` (str or UTF-8 bytes) and each value's index among them."""
    seen: dict = {}
    codes = np.fromiter((seen.setdefault(v, len(seen)) for v in values), np.intp, len(values))
    uniq = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in seen]
    if len(set(uniq)) < len(uniq):  # the same text as str and as bytes
        merged: dict[str, int] = {}
        remap = np.array([merged.setdefault(u, len(merged)) for u in uniq], dtype=np.intp)
        return list(merged), remap[codes]
    return uniq, codes


def factorize_pieces(values: np.ndarray, pieces: list[tuple[object, int, int]]
                     ) -> tuple[list[str], np.ndarray]:
    """``factorize`` for a column made of runs that are mostly one value each (``fov``).

    ``pieces``: (label, start, stop) of the runs (the block's FOV pieces). A run whose values
    all equal its first costs one vectorised comparison instead of a dict lookup per row.
    """
    codes = np.empty(len(values), dtype=np.intp)
    seen: dict = {}
    for _label, start, stop in pieces:
        if stop <= start:
            continue
        piece = values[start:stop]
        first = piece[0]
        if (piece == first).all():
            codes[start:stop] = seen.setdefault(first, len(seen))
        else:
            codes[start:stop] = np.fromiter((seen.setdefault(v, len(seen)) for v in piece),
                                            np.intp, len(piece))
    covered = sum(stop - start for _l, start, stop in pieces if stop > start)
    if covered != len(values):  # the pieces do not tile the column: the general way
        return factorize(values)
    uniq = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in seen]
    if len(set(uniq)) < len(uniq):
        merged: dict[str, int] = {}
        remap = np.array([merged.setdefault(u, len(merged)) for u in uniq], dtype=np.intp)
        return list(merged), remap[codes]
    return uniq, codes


def format_codes(uniq: list[str], inverse: np.ndarray) -> np.ndarray:
    """Byte matrix of strings given as ``factorize`` returns them: each distinct one once."""
    if not len(inverse):
        return np.zeros((0, 1), dtype=np.uint8)
    texts = [_quote(u).encode("utf-8") for u in uniq]
    width = max(1, max(len(t) for t in texts))
    table = np.frombuffer(b"".join(t.ljust(width, b"\0") for t in texts), np.uint8)
    return table.reshape(len(texts), width)[inverse]


def format_strings(values: np.ndarray) -> np.ndarray:
    return format_codes(*factorize(values))


def render(columns: list[np.ndarray]) -> bytes:
    """CSV text of rows whose fields are the byte matrices ``columns``."""
    n = len(columns[0])
    width = sum(c.shape[1] for c in columns) + len(columns)
    m = np.zeros((n, width), dtype=np.uint8)
    at = 0
    for j, c in enumerate(columns):
        m[:, at: at + c.shape[1]] = c
        at += c.shape[1]
        m[:, at] = _NEWLINE if j == len(columns) - 1 else _COMMA
        at += 1
    # an empty field next to a comma is a NUL too: the comma itself is never NUL
    return m[m != 0].tobytes()


def row_intensity(data: np.ndarray) -> np.ndarray:
    """Largest value over every axis but the first (NaN only where all are NaN)."""
    flat = data.reshape(len(data), -1)
    if not flat.shape[1]:
        return np.full(len(data), np.nan)
    return np.fmax.reduce(flat, axis=1)


def block_columns(arrays: dict, data: np.ndarray, factors: dict | None = None,
                  bool_names: frozenset[str] | set[str] = frozenset()) -> list[np.ndarray]:
    """The byte matrices of ``COLUMNS`` for one block.

    ``arrays``: the block's coordinates by name (``fov`` must be there: the caller fills it
    from the FOV names when the table has none); ``data``: its intensities;
    ``factors``: ``factorize`` results already computed for string columns;
    ``bool_names``: coordinates stored as int8 that are booleans.
    """
    n = len(data)
    factors = factors or {}
    out = []
    for name in COLUMNS:
        if name == "intensity":
            out.append(format_float(row_intensity(data)))
        elif name in factors:
            out.append(format_codes(*factors[name]))
        elif name not in arrays:
            out.append(np.zeros((n, 1), dtype=np.uint8))
        else:
            v = arrays[name]
            if name in bool_names or v.dtype.kind == "b":
                out.append(format_bool(v))
            elif v.dtype.kind in "OUS":
                out.append(format_strings(v))
            elif v.dtype.kind in "iu":
                out.append(format_int(v))
            else:
                out.append(format_float(v))
    return out


class SpotsCsvWriter:
    """Gzip-compressed CSV written block by block to a binary file."""

    def __init__(self, stream: BinaryIO, level: int = GZIP_LEVEL):
        self.stream = stream
        self.rows = 0
        self._z = zlib.compressobj(level, zlib.DEFLATED, 31)  # 31: gzip container
        self.stream.write(self._z.compress((",".join(COLUMNS) + "\n").encode()))

    def write_block(self, columns: list[np.ndarray]) -> None:
        if not len(columns[0]):
            return
        self.stream.write(self._z.compress(render(columns)))
        self.rows += len(columns[0])

    def close(self) -> None:
        self.stream.write(self._z.flush())
