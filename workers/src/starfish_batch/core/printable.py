"""Text from a run (FOV names, codebook targets, what a recipe printed) made safe to print.

A FOV name or a log line can hold terminal escape sequences (ESC, OSC: they retitle the
window, recolour it or forge lines) and can be any length (one 20 MB line). Everything the
launcher prints or puts in report.html from such a source goes through here: control and
bidirectional-override characters are written as escapes, lone surrogates too, and each
line and each log tail has a bound.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

MAX_LINE_CHARS = 500
"""One line of a log tail, a headline or an error line, as printed and in report.html."""
MAX_TAIL_CHARS = 6_000
"""A whole log tail (its last lines), printed and in report.html."""
TAIL_READ_BYTES = 64 * 1024
"""How much of the end of a log file is read for its tail, whatever its size."""

# C0 and C1 controls and DEL; the bidirectional overrides and isolates; lone surrogates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(match: re.Match) -> str:
    c = match.group()
    if c in _NAMED:
        return _NAMED[c]
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: object) -> str:
    """``text`` with every control, bidi-override and surrogate character written as an
    escape (``\\x1b``, ``\\n``, ``\\x07``, ``\\u202e``, ``\\udcff``): one printable line."""
    return _UNSAFE.sub(_escape_char, str(text))


def not_unicode(text: str) -> str | None:
    """Where ``text`` is not valid Unicode (a lone surrogate, as JSON's ``"\\udc80"`` gives),
    in words, or None when it is."""
    found = re.search("[\ud800-\udfff]", text)
    if found is None:
        return None
    return (f"it is not valid Unicode: a lone surrogate ({escape(found.group())}) at character "
            f"{found.start() + 1}")


def escape_lines(text: object) -> str:
    """Like :func:`escape`, but keeps the newlines of a message made of several lines."""
    return "\n".join(escape(line) for line in str(text).split("\n"))


def clip(text: str, limit: int = MAX_LINE_CHARS) -> str:
    """At most ``limit`` characters, saying how many were left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]} ... [{len(text) - limit:,} more characters]"


def line(text: object, limit: int = MAX_LINE_CHARS) -> str:
    """One printable, bounded line."""
    return clip(escape(text), limit)


def bounded_tail(lines: Iterable[str], limit_line: int = MAX_LINE_CHARS,
                 limit_total: int = MAX_TAIL_CHARS) -> list[str]:
    """The last lines of a log, each escaped and clipped, together at most ``limit_total``
    characters (the newest lines are kept)."""
    out: list[str] = []
    total = 0
    for raw in reversed(list(lines)):
        text = line(raw, limit_line)
        if out and total + len(text) > limit_total:
            out.append(f"... [earlier lines left out: the tail is limited to {limit_total:,} characters]")
            break
        out.append(text)
        total += len(text)
    return list(reversed(out))


def read_tail(path: str | os.PathLike, n_lines: int, max_bytes: int = TAIL_READ_BYTES) -> list[str]:
    """The last ``n_lines`` lines of a file of any size, reading at most its last ``max_bytes``,
    bounded as :func:`bounded_tail` says."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - max_bytes))
        data = f.read(max_bytes)
    cut = size > max_bytes
    text = data.decode("utf-8", "replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if cut and lines:
        lines[0] = f"[...] {lines[0]}"  # the start of this line is before what was read
    return bounded_tail(lines[-n_lines:])
