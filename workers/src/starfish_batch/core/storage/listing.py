"""What is under a prefix, from one listing: names, sizes, and in S3 ETags."""

from __future__ import annotations

from starfish_batch.core.errors import StorageError
from starfish_batch.core.storage import local, s3
from starfish_batch.core.storage.failures import describe
from starfish_batch.core.storage.urls import is_s3


def list_objects(prefix_url: str) -> dict[str, tuple[int, str | None]]:
    """(size, ETag) of each object under ``prefix_url`` from one listing (ETag None on disk)."""
    if not is_s3(prefix_url):
        return {name: (n, None) for name, n in list_sizes(prefix_url).items()}
    try:
        return s3.list_under(prefix_url.rstrip("/") + "/")
    except StorageError:
        raise
    except Exception as exc:
        raise StorageError(f"cannot list {prefix_url}: {describe(exc)}") from exc


def list_sizes(prefix_url: str) -> dict[str, int]:
    """Size in bytes of each object under ``prefix_url`` (names relative to it; hidden local
    files left out), from one listing."""
    if is_s3(prefix_url):
        return {name: n for name, (n, _) in list_objects(prefix_url).items()}
    try:
        return local.list_sizes(prefix_url.rstrip("/") + "/")
    except StorageError:
        raise
    except Exception as exc:
        raise StorageError(f"cannot list {prefix_url}: {describe(exc)}") from exc


def list_names(prefix_url: str) -> list[str]:
    """Names of the objects directly or indirectly under ``prefix_url`` (relative to it)."""
    return sorted(list_sizes(prefix_url))
