"""``decoded_spots.csv.gz``: one row per feature of the merged table, written a block at a time.

Columns: those of ``transcripts.parquet``, with the same names and meanings
(:mod:`starfish_batch.merge.columns`): ``xc, yc, zc`` physical (stage) coordinates, ``x, y, z``
pixels, ``intensity`` the spot finder's, ``max_intensity`` the largest over rounds and channels.

- ``passes_thresholds`` is ``True``/``False``; an undecoded ``target`` and a ``cell_id`` outside
  any cell are empty cells (``pd.read_csv`` reads them as NaN); a coordinate no table has gives
  no column (``fov`` comes from the FOV name when the table has none);
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

from typing import BinaryIO

import numpy as np

try:  # ISA-L's deflate: gzip level 1 in a third of zlib's time, and a smaller file
    from isal import isal_zlib as zlib
except ImportError:  # pragma: no cover - a platform without isal wheels
    import zlib

from starfish_batch.merge.columns import COLUMNS, MAX_INTENSITY, MISSING_TARGETS, undecoded  # noqa: F401

SIGNIFICANT = 7
MAX_DECIMALS = 10
GZIP_LEVEL = 1
"""Level 1: the CSV thread is the busier one (with ISA-L, 6% smaller than zlib's level 1)."""

_ZERO, _DOT, _MINUS, _COMMA, _NEWLINE, _QUOTE = 48, 46, 45, 44, 10, 34


_POW10 = 10 ** np.arange(1, 20, dtype=np.uint64)
"""10, 100, ..., 10**19: ``searchsorted`` in it counts a number's digits."""
_GROUP = 10_000
_GROUP_TEXT = np.frombuffer(b"".join(b"%04d" % i for i in range(_GROUP)), np.uint32)
"""The four ASCII digits of 0..9999, each as one uint32: a number is written 4 digits a pass."""
_GROUP_TRAILING = np.array([4] + [len(str(i)) - len(str(i).rstrip("0")) for i in range(1, _GROUP)],
                           dtype=np.intp)
"""Trailing decimal zeros of 0..9999 written with 4 digits (0 has 4)."""


def _digits(values: np.ndarray, width: int | None = None) -> np.ndarray:
    """Decimal digits of non-negative integers as a (n, width) matrix of ASCII bytes.

    ``width`` is rounded up to a multiple of 4 (more leading zeros; the callers blank them).
    """
    top = int(values.max()) if values.size else 0
    width = width or max(1, len(str(top)))
    groups = -(-width // 4)
    dtype = np.uint32 if top < 2**32 else np.uint64
    x = values.astype(dtype, copy=True)
    out = np.empty((len(values), groups), dtype=np.uint32)
    r = np.empty_like(x)
    for j in range(groups - 1, -1, -1):
        np.divmod(x, _GROUP, out=(x, r))
        np.take(_GROUP_TEXT, r, out=out[:, j])
    return out.view(np.uint8).reshape(len(values), groups * 4)


def _n_digits(values: np.ndarray) -> np.ndarray:
    """How many decimal digits each non-negative integer has (0 has one)."""
    return np.searchsorted(_POW10, values.astype(np.uint64, copy=False), side="right") + 1


def _blank_leading(m: np.ndarray, n_digits: np.ndarray) -> None:
    """NUL out the zeros left of each row's ``n_digits`` last digits (one digit kept at least)."""
    width = m.shape[1]
    if width > 1:
        lead = width - np.maximum(n_digits, 1)
        if lead.any():
            head = m[:, : width - 1]
            np.multiply(head, np.arange(width - 1)[None, :] >= lead[:, None], out=head)


def _trailing_zeros(q: np.ndarray, limit: int) -> np.ndarray:
    """Trailing decimal zeros of each non-negative integer, at most ``limit`` (0 has ``limit``)."""
    dtype = np.uint32 if limit <= 9 else np.uint64
    x = (q % (10**limit)).astype(dtype)
    count = np.zeros(len(q), dtype=np.intp)
    alive = np.ones(len(q), dtype=bool)
    r = np.empty_like(x)
    for _ in range(-(-limit // 4)):
        np.divmod(x, _GROUP, out=(x, r))
        count += np.where(alive, _GROUP_TRAILING[r], 0)
        alive &= r == 0
    return np.minimum(count, limit)


def format_int(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind == "f":
        return format_float(values)
    v = values.astype(np.int64)
    neg = v < 0
    a = np.abs(v)
    m = _digits(a)
    _blank_leading(m, _n_digits(a))
    if neg.any():
        m = np.concatenate([np.where(neg, _MINUS, 0).astype(np.uint8)[:, None], m], axis=1)
    return m


def format_float(values: np.ndarray, significant: int = SIGNIFICANT) -> np.ndarray:
    """Fixed point, ``significant`` digits of the largest magnitude; NaN -> empty."""
    pieces = _float_pieces(values, significant)
    return pieces[0] if len(pieces) == 1 else np.concatenate(pieces, axis=1)


def _float_pieces(values: np.ndarray, significant: int = SIGNIFICANT) -> list[np.ndarray]:
    """``format_float`` as byte matrices to be joined side by side (sign, digits, dot, fraction).

    ``render`` joins them as it copies them: no concatenation here.
    """
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    if not finite.any():
        return [np.zeros((len(v), 1), dtype=np.uint8)]
    all_finite = bool(finite.all())
    a = np.abs(v) if all_finite else np.where(finite, np.abs(v), 0.0)
    top = float(a.max())
    int_digits = int(np.floor(np.log10(top))) + 1 if top > 0 else 1
    decimals = min(max(significant - int_digits, 0), MAX_DECIMALS)
    if top * 10.0**decimals >= 2**62:  # too large for fixed point in int64: plain repr
        text = np.where(finite, v, 0.0).astype(str)
        text[~finite] = ""
        return [format_strings(text)]
    q = np.rint(a * 10.0**decimals).astype(np.int64)
    m = _digits(q, max(len(str(int(q.max()))), decimals + 1))
    n_digits = _n_digits(q)
    if decimals:
        width = m.shape[1]
        # the integer part keeps one digit ("0.5"); the fraction drops its trailing zeros
        ip = m[:, : width - decimals]
        _blank_leading(ip, n_digits - decimals)
        kept = decimals - _trailing_zeros(q, decimals)  # fraction digits kept
        fp = m[:, width - decimals:]
        np.multiply(fp, np.arange(decimals)[None, :] < kept[:, None], out=fp)
        dot = ((kept != 0) * np.uint8(_DOT)).astype(np.uint8)
        pieces = [ip, dot[:, None], fp]
    else:
        _blank_leading(m, n_digits)
        pieces = [m]
    neg = (v < 0) & (q > 0)
    if neg.any():
        pieces.insert(0, (neg * np.uint8(_MINUS)).astype(np.uint8)[:, None])
    if all_finite:
        return pieces
    m = np.concatenate(pieces, axis=1)
    m[~finite] = 0
    inf = np.isinf(v)
    if inf.any():
        text = np.where(v[inf] > 0, b"inf", b"-inf").astype("S4")
        m = np.concatenate([m, np.zeros((len(v), 4), np.uint8)], axis=1)
        m[inf] = 0
        m[inf, :4] = text.view(np.uint8).reshape(-1, 4)
    return [m]


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


def factorize(values: np.ndarray) -> tuple[list[str], np.ndarray]:
    """The distinct values of ``values`` as text (UTF-8 bytes decoded, others ``str``), in order
    of first appearance, and each value's index among them.

    For what a block does not already hold as codes (``Block.factor``): a table without
    ``fov`` or ``target`` strings, and ``format_strings``; pandas is imported only then. For
    65,536 rows, pandas.factorize takes 3.4 ms (strings) and 0.27 ms (integers) where the
    dictionary lookup per row it replaces took 4.4 and 6.0 ms.
    """
    import pandas as pd  # lazy: pandas ~1.8 s

    codes, uniques = pd.factorize(np.asarray(values), use_na_sentinel=False)
    uniq = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in uniques]
    if len(set(uniq)) < len(uniq):  # the same text as str and as bytes
        remap, merged = pd.factorize(np.array(uniq, dtype=object))
        return [str(u) for u in merged], remap[codes]
    return uniq, codes.astype(np.intp, copy=False)


def piece_labels(pieces: list[tuple[object, int, int]], n: int) -> np.ndarray:
    """A column holding each piece's label over its rows (the FOV names of a table without ``fov``)."""
    names = np.empty(n, dtype=object)
    for label, start, stop in pieces:
        names[start:stop] = label
    return names


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


def render(columns: list[np.ndarray | list[np.ndarray]]) -> bytes:
    """CSV text of rows whose fields are the byte matrices ``columns``.

    A field may also be a list of byte matrices, joined side by side (``_float_pieces``).
    """
    fields = [c if isinstance(c, list) else [c] for c in columns]
    n = len(fields[0][0])
    width = sum(p.shape[1] for f in fields for p in f) + len(fields)
    m = np.empty((n, width), dtype=np.uint8)
    at = 0
    for j, pieces in enumerate(fields):
        for p in pieces:
            m[:, at: at + p.shape[1]] = p
            at += p.shape[1]
        m[:, at] = _NEWLINE if j == len(fields) - 1 else _COMMA
        at += 1
    # an empty field next to a comma is a NUL too: the comma itself is never NUL
    return m[m != 0].tobytes()


def row_intensity(data: np.ndarray) -> np.ndarray:
    """Largest value over every axis but the first (NaN only where all are NaN)."""
    flat = data.reshape(len(data), -1)
    if not flat.shape[1]:
        return np.full(len(data), np.nan)
    out = flat[:, 0].copy()
    for j in range(1, flat.shape[1]):  # column by column: a reduce over 16 per row is slower
        np.fmax(out, flat[:, j], out=out)
    return out


def block_columns(arrays: dict, data: np.ndarray, factors: dict | None = None,
                  bool_names: frozenset[str] | set[str] = frozenset(),
                  columns: tuple[str, ...] | list[str] = COLUMNS) -> list[np.ndarray]:
    """The byte matrices of ``COLUMNS`` for one block (a float's as a list, see ``render``).

    ``arrays``: the block's coordinates by name (``fov`` must be there: the caller fills it
    from the FOV names when the table has none); ``data``: its intensities;
    ``factors``: ``factorize`` results already computed for string columns;
    ``bool_names``: coordinates stored as int8 that are booleans.
    """
    n = len(data)
    factors = factors or {}
    out = []
    for name in columns:
        if name == MAX_INTENSITY:
            out.append(_float_pieces(row_intensity(data)))
        elif name == "cell_id" and "cell_id" in factors:
            from starfish_batch.merge.parquet import global_cell_ids  # lazy: cycle with merge/parquet.py

            uniq, index = global_cell_ids(factors["fov"], factors["cell_id"])
            out.append(format_codes(["", *uniq], index + 1))  # -1 (in no cell): empty
        elif name == "target" and name in factors:
            uniq, codes = factors[name]
            out.append(format_codes([("" if u else t) for t, u in zip(uniq, undecoded(uniq), strict=True)], codes))
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
                out.append(_float_pieces(v))
    return out


class SpotsCsvWriter:
    """Gzip-compressed CSV written block by block to a binary file."""

    def __init__(self, stream: BinaryIO, level: int = GZIP_LEVEL, columns: tuple[str, ...] | list[str] = COLUMNS):
        self.stream = stream
        self.rows = 0
        self.columns = tuple(columns)
        self._z = zlib.compressobj(level, zlib.DEFLATED, 31)  # 31: gzip container
        self.stream.write(self._z.compress((",".join(self.columns) + "\n").encode()))

    def write_block(self, columns: list[np.ndarray]) -> None:
        first = columns[0][0] if isinstance(columns[0], list) else columns[0]
        if not len(first):
            return
        self.stream.write(self._z.compress(render(columns)))
        self.rows += len(first)

    def close(self) -> None:
        self.stream.write(self._z.flush())
