"""A FOV's tiles, fetched at once through the shared clients and checked against their sha256.

slicedimage reads each tile when starfish asks for it, serially, and from S3 through a new
boto3 session per object; here all of a FOV's tiles are fetched concurrently (bounded
threads) before the recipe runs, so a missing or corrupt tile fails the load, naming it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from starfish_batch.core import storage
from starfish_batch.core.errors import ExperimentError, StorageError

TILE_THREADS = 8


@dataclass(frozen=True)
class TileRef:
    url: str
    sha256: str | None = None


def fetch_one(ref: TileRef) -> bytes:
    try:
        data = storage.read_bytes(ref.url)
    except StorageError as exc:
        raise ExperimentError(f"cannot read tile {ref.url}: {exc.reason}") from exc
    if ref.sha256 and hashlib.sha256(data).hexdigest() != ref.sha256.lower():
        raise ExperimentError(f"tile {ref.url} does not match the sha256 its tile set gives "
                              f"({len(data)} bytes read): the file changed or is corrupt")
    return data


def fetch_all(refs: Sequence[TileRef], threads: int = TILE_THREADS) -> list[bytes]:
    """The bytes of every tile, in the order given; the first failure is raised."""
    if len(refs) <= 1:
        return [fetch_one(ref) for ref in refs]
    with ThreadPoolExecutor(max_workers=min(threads, len(refs)), thread_name_prefix="tiles") as pool:
        return list(pool.map(fetch_one, refs))
