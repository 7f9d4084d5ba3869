"""FOV names are data, never paths: each name gets a storage key that is safe everywhere.

An experiment names its FOVs freely (``../x``, ``a/b``, ``.hidden``, 300 characters, names
that differ only in case). Every file a run writes for a FOV (``fovs/<key>.nc``,
``fovs/<key>.json``, ``logs/<key>.log``) is named by its key instead, so nothing lands outside
the run folder, nothing is hidden, and two FOVs never share a file, even on a disk that
ignores case. The name itself stays in the tables (the ``fov`` coordinate) and the records.

A plain name (letters, digits, ``_``, ``-``, inner dots; at most 100 characters) is its own key:
``fovs/fov_001.nc`` is what a scientist expects to see. Any other character is written as ``~``
and its UTF-8 bytes in hexadecimal (``../x`` -> ``~2E~2E~2Fx``), which :func:`decode` reverses.
A key that would be too long, or that would collide with another FOV's when case is ignored,
gets ``~~`` and a digest of the exact name instead (``~~`` never occurs in an encoded name);
the manifest's FOV list maps such keys back to their names.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable

from starfish_batch.core import printable
from starfish_batch.core.errors import StarfishBatchError

PLAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,98}[A-Za-z0-9_-])?")
_KEEP = re.compile(r"[A-Za-z0-9_-]")
MAX_KEY = 100


def encode(name: str) -> str:
    """The reversible key of one name (without the length and case rules of :func:`storage_keys`)."""
    if PLAIN.fullmatch(name):
        return name
    return "".join(c if _KEEP.fullmatch(c) else "".join(f"~{b:02X}" for b in c.encode("utf-8"))
                   for c in name)


def decode(key: str) -> str:
    """The name an :func:`encode` key stands for (keys with ``~~`` are looked up in the manifest)."""
    if "~~" in key:
        raise ValueError(f"key {key!r} is a digest: its name is in the run's manifest")
    return bytes(_unescape(key)).decode("utf-8")


def _unescape(key: str) -> Iterable[int]:
    i = 0
    while i < len(key):
        if key[i] == "~":
            yield int(key[i + 1:i + 3], 16)
            i += 3
        else:
            yield from key[i].encode("utf-8")
            i += 1


def _digest(name: str, n: int) -> str:
    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:n]


def check_names(names: Iterable[object]) -> list[str]:
    """The names as a list, once each is a non-empty string listed once; else one line naming it."""
    seen: set[str] = set()
    out: list[str] = []
    for name in names:
        if not isinstance(name, str) or not name:
            raise StarfishBatchError(f"FOV name {name!r} is not usable: a FOV needs a non-empty name")
        problem = printable.not_unicode(name)
        if problem:
            raise StarfishBatchError(f"FOV name {printable.escape(name)} is not usable: {problem}")
        if name in seen:
            raise StarfishBatchError(f"FOV {name!r} is listed twice")
        seen.add(name)
        out.append(name)
    return out


def storage_keys(names: Iterable[str]) -> dict[str, str]:
    """name -> key for every FOV of a run: safe, unique even when case is ignored, reversible."""
    names = check_names(names)
    keys = {}
    for name in names:
        key = encode(name)
        keys[name] = key if len(key) <= MAX_KEY else f"{key[:MAX_KEY - 34]}~~{_digest(name, 32)}"
    groups: dict[str, list[str]] = defaultdict(list)
    for name, key in keys.items():
        groups[key.casefold()].append(name)
    for members in groups.values():
        if len(members) > 1:  # A1 and a1: both get their own digest, so neither depends on the other
            for name in members:
                keys[name] = f"{keys[name][:MAX_KEY - 18]}~~{_digest(name, 16)}"
    if len({k.casefold() for k in keys.values()}) != len(keys):  # a digest collision: never seen
        raise StarfishBatchError("two FOV names map to one storage key; rename one of them")
    return keys
