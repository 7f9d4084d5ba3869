"""The local backend (paths and ``file://``): whole files by a temporary name and a rename,
exclusive creates by a hard link, compare-and-swap under a kernel lock."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil

from starfish_batch.core.errors import AlreadyExists, StorageError
from starfish_batch.core.storage.failures import describe, write_failure
from starfish_batch.core.storage.temporaries import replacing, temporary
from starfish_batch.core.storage.urls import local_path


def get(url: str) -> bytes:
    return local_path(url).read_bytes()


def put(url: str, data: bytes, content_type: str | None = None) -> None:
    """Write ``data`` whole (``content_type`` has no meaning on disk)."""
    with replacing(local_path(url), url) as tmp:
        try:
            tmp.write_bytes(data)
        except OSError as exc:
            raise write_failure(url, exc, tmp) from exc


def upload(source: str | os.PathLike, url: str) -> None:
    """Publish the local file ``source`` at ``url`` whole (a copy, then a rename)."""
    with replacing(local_path(url), url) as tmp:
        try:
            shutil.copyfile(source, tmp)
        except OSError as exc:
            raise write_failure(url, exc, tmp) from exc


def create_exclusive(url: str, data: bytes) -> None:
    """Written whole first, then linked in only if the name is free (FileExistsError if not)."""
    path = local_path(url)
    with temporary(path.parent, path.name, ".tmp", url) as tmp:
        tmp.write_bytes(data)
        os.link(tmp, path)


def tag(data: bytes) -> str:
    """What ``replace_if`` compares on disk: the bytes' sha256."""
    return hashlib.sha256(data).hexdigest()


def replace_if(url: str, expected: str, data: bytes, lost: AlreadyExists) -> None:
    """Rename ``data`` over ``url`` if its bytes still have the tag ``expected``, else raise
    ``lost``: the compare and the rename happen under an exclusive ``flock`` of
    ``.<name>.guard`` beside it, held by the kernel (released if the holder dies)."""
    path = local_path(url)
    try:
        fd = os.open(path.parent / f".{path.name}.guard", os.O_CREAT | os.O_RDWR, 0o600)
    except OSError as exc:
        raise StorageError(f"cannot write {url}: {describe(exc)}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # every replace_if of this file, one at a time
        try:
            current = path.read_bytes()
        except FileNotFoundError:
            raise lost from None
        if tag(current) != expected:
            raise lost
        put(url, data)  # a rename: readers see the old bytes or the new, never a mix
    finally:
        os.close(fd)  # releases the lock


def size(url: str) -> int | None:
    path = local_path(url)
    return path.stat().st_size if path.is_file() else None


def delete(url: str) -> None:
    local_path(url).unlink(missing_ok=True)


def list_sizes(prefix_url: str) -> dict[str, int]:
    """Size of each file under the folder ``prefix_url`` (names relative to it; hidden files left out)."""
    root = local_path(prefix_url)
    if not root.is_dir():
        return {}
    out = {}
    for p in root.rglob("*"):
        if p.name.startswith("."):
            continue
        try:
            st = p.stat()
        except OSError:
            continue
        if p.is_file():
            out[str(p.relative_to(root))] = st.st_size
    return out
