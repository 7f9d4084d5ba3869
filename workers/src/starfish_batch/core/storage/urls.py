"""The URLs storage accepts: local paths, ``file://``, ``s3://`` (and ``https://`` to read), and
their algebra (join, parent, bucket and key). No I/O."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from starfish_batch.core.errors import StorageError


def is_s3(url: str) -> bool:
    return url.startswith("s3://")


def is_http(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def absolute(url: str) -> str:
    """An absolute form of ``url``: ``s3://`` stays, local paths and ``file://`` become absolute paths."""
    if is_s3(url):
        return url.rstrip("/") if url.count("/") > 3 else url
    if url.startswith("file://"):
        url = urlparse(url).path
    if "://" in url:
        raise StorageError(f"unsupported URL scheme in {url!r}: use a local path, file:// or s3://")
    return str(Path(url).expanduser().resolve())


def local_path(url: str) -> Path:
    """The file a local path or ``file://`` URL names (any other scheme: StorageError)."""
    return Path(absolute(url))


def join(base: str, *parts: str) -> str:
    out = base.rstrip("/")
    for part in parts:
        out = f"{out}/{part.strip('/')}"
    return out


def parent(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[0]


def split_s3(url: str) -> tuple[str, str]:
    parsed = urlparse(url)
    if not parsed.netloc:
        raise StorageError(f"no bucket in S3 URL {url!r}")
    return parsed.netloc, parsed.path.lstrip("/")
