"""Local files standing in for objects: a local copy to read, a local path or folder to write
that is published whole at its URL on clean exit and not at all on error."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from starfish_batch.core.errors import StorageError
from starfish_batch.core.storage import s3
from starfish_batch.core.storage.failures import describe, no_space_left, write_failure
from starfish_batch.core.storage.objects import upload_file
from starfish_batch.core.storage.temporaries import local_temporary, replacing
from starfish_batch.core.storage.urls import is_s3, join, local_path


@contextmanager
def local_copy(url: str) -> Iterator[Path]:
    """A local path holding the object at ``url``: the file itself on disk, a temporary copy from S3."""
    if not is_s3(url):
        path = local_path(url)
        if not path.is_file():
            raise StorageError(f"cannot read {url}: no such file")
        yield path
        return
    with local_temporary("-" + url.rsplit("/", 1)[-1]) as dest:
        try:
            s3.download(url, dest)
        except Exception as exc:
            if no_space_left(exc, dest):
                raise write_failure(str(dest), exc, dest) from exc
            raise StorageError(f"cannot read {url}: {describe(exc)}") from exc
        yield dest


@contextmanager
def staged_output(url: str, suffix: str = "") -> Iterator[Path]:
    """A local path to write; on clean exit it is published at ``url`` whole, on error nothing is."""
    if not is_s3(url):
        with replacing(local_path(url), url, suffix or ".tmp") as tmp:
            yield tmp
        return
    with local_temporary(suffix) as tmp:
        yield tmp
        upload_file(tmp, url)


@contextmanager
def staged_tree(url: str) -> Iterator[Path]:
    """A local path, not yet existing, to create a directory at (a zarr store); on clean exit
    it is published at ``url`` whole (renamed over the old one on disk, every file uploaded
    under the prefix in S3), on error nothing is."""
    if is_s3(url):
        with tempfile.TemporaryDirectory(prefix=".starfish-batch-") as tmp:
            tree = Path(tmp) / "tree"
            yield tree
            for path in sorted(tree.rglob("*")):
                if path.is_file():
                    upload_file(path, join(url, path.relative_to(tree).as_posix()))
        return
    dest = local_path(url)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    except OSError as exc:
        raise StorageError(f"cannot write {url}: {describe(exc)}") from exc
    try:
        yield tmp / dest.name
        old = tmp / "old"
        try:
            if dest.exists():
                os.replace(dest, old)
            os.replace(tmp / dest.name, dest)
        except OSError as exc:
            raise StorageError(f"cannot write {url}: {describe(exc)}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
