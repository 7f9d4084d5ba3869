"""Whole objects at a URL: each operation picks the backend of the URL's scheme (``s3``,
``http`` to read, ``local``) and turns any failure into one StorageError line naming the URL."""

from __future__ import annotations

import os
import re
import uuid
from types import ModuleType

from starfish_batch.core.errors import AlreadyExists, StorageError
from starfish_batch.core.storage import http, local, s3
from starfish_batch.core.storage.failures import NOT_FOUND, PRECONDITION_FAILED, describe, error_code
from starfish_batch.core.storage.urls import is_http, is_s3, join, local_path, split_s3


def backend(url: str, reading: bool = False) -> ModuleType:
    """The module that serves ``url``: ``s3``, ``http`` (reads only) or ``local`` (which refuses
    any other scheme with a StorageError)."""
    if is_s3(url):
        return s3
    return http if reading and is_http(url) else local


def read_bytes(url: str) -> bytes:
    try:
        return backend(url, reading=True).get(url)
    except StorageError:
        raise
    except Exception as exc:  # botocore, OSError: one line naming the URL
        reason = describe(exc)
        raise StorageError(f"cannot read {url}: {reason}", reason) from exc


def read_text(url: str) -> str:
    return read_bytes(url).decode("utf-8")


def write_bytes(url: str, data: bytes, content_type: str | None = None) -> None:
    """Write ``data`` whole at ``url``: temporary name then rename, or one PUT (with
    ``content_type`` as its Content-Type, when given)."""
    try:
        backend(url).put(url, data, content_type)
    except StorageError:
        raise
    except Exception as exc:
        raise StorageError(f"cannot write {url}: {describe(exc)}") from exc


def write_text(url: str, text: str, content_type: str | None = None) -> None:
    write_bytes(url, text.encode("utf-8"), content_type)


def upload_file(local_path: str | os.PathLike, url: str) -> None:
    """Publish a finished local file at ``url`` whole (rename on disk, upload in S3)."""
    try:
        backend(url).upload(local_path, url)
    except StorageError:
        raise
    except Exception as exc:
        raise StorageError(f"cannot write {url}: {describe(exc)}") from exc


def create_exclusive(url: str, data: bytes) -> None:
    """Write ``data`` at ``url`` only if nothing is there: one claimant wins, the others get AlreadyExists.

    On disk an exclusive create (``O_EXCL``); in S3 a conditional PUT (``If-None-Match: *``).
    """
    try:
        if is_s3(url):
            s3.put(url, data, IfNoneMatch="*")
        else:
            local.create_exclusive(url, data)
    except FileExistsError:
        raise AlreadyExists(f"{url} already exists", "already exists") from None
    except StorageError:
        raise
    except Exception as exc:
        if error_code(exc) in PRECONDITION_FAILED:
            raise AlreadyExists(f"{url} already exists", "already exists") from None
        raise StorageError(f"cannot write {url}: {describe(exc)}") from exc


def read_tagged(url: str) -> tuple[bytes, str]:
    """The object's bytes and a tag that changes whenever it is rewritten: the S3 ETag, or on
    disk the bytes themselves (``replace_if`` compares them under a kernel lock)."""
    gone = AlreadyExists(f"{url} is gone", "gone")
    if is_s3(url):
        try:
            return s3.get_tagged(url)
        except Exception as exc:
            if error_code(exc) in NOT_FOUND:
                raise gone from None
            raise StorageError(f"cannot read {url}: {describe(exc)}", describe(exc)) from exc
    try:
        data = local_path(url).read_bytes()
    except FileNotFoundError:
        raise gone from None
    except OSError as exc:
        raise StorageError(f"cannot read {url}: {describe(exc)}", describe(exc)) from exc
    return data, local.tag(data)


def replace_if(url: str, tag: str, data: bytes) -> None:
    """Write ``data`` at ``url`` only if the object there is still the one ``read_tagged`` gave
    ``tag``: of several writers holding the same tag exactly one succeeds, the others get
    AlreadyExists. In S3 a conditional PUT (``If-Match: <ETag>``: AWS answers 412
    PreconditionFailed, or 409 ConditionalRequestConflict to a concurrent one); on disk the
    compare and the rename happen under an exclusive ``flock`` of ``.<name>.guard`` beside it,
    held by the kernel (released if the holder dies)."""
    lost = AlreadyExists(f"{url} changed meanwhile", "changed meanwhile")
    if not is_s3(url):
        local.replace_if(url, tag, data, lost)
        return
    split_s3(url)  # no bucket: said as it is, not as a failed write
    try:
        s3.put(url, data, IfMatch=tag)
    except Exception as exc:
        if error_code(exc) in (*PRECONDITION_FAILED, "409", *NOT_FOUND):
            raise lost from None
        raise StorageError(f"cannot write {url}: {describe(exc)}") from exc


def is_dir(url: str) -> bool:
    """A local folder (S3 and https have none)."""
    return not is_s3(url) and not is_http(url) and local_path(url).is_dir()


def size_and_etag(url: str) -> tuple[int | None, str | None]:
    """The object's size (None: absent) and, in S3, its ETag."""
    if not is_s3(url):
        return size(url), None
    try:
        return s3.head(url)
    except Exception as exc:
        if error_code(exc) in NOT_FOUND:
            return None, None
        raise StorageError(f"cannot check {url}: {describe(exc)}") from exc


def size(url: str) -> int | None:
    """The object's size in bytes, or None when there is none."""
    try:
        return s3.head(url)[0] if is_s3(url) else local.size(url)
    except Exception as exc:
        if error_code(exc) in NOT_FOUND:
            return None
        raise StorageError(f"cannot check {url}: {describe(exc)}") from exc


def exists(url: str) -> bool:
    try:
        if is_s3(url):
            s3.head(url)
            return True
        return local_path(url).is_file()
    except Exception as exc:
        if error_code(exc) in NOT_FOUND:
            return False
        raise StorageError(f"cannot check {url}: {describe(exc)}") from exc


def delete(url: str) -> None:
    """Remove the object at ``url`` if there is one."""
    try:
        backend(url).delete(url)
    except Exception as exc:
        raise StorageError(f"cannot delete {url}: {describe(exc)}") from exc


def copy_object(src_url: str, dest_url: str) -> None:
    """An S3 copy inside S3 (multipart for large objects): no byte comes back to this machine."""
    try:
        s3.copy(src_url, dest_url)
    except Exception as exc:
        raise StorageError(f"cannot write {dest_url}: {describe(exc)}") from exc


def check_writable(url: str) -> None:
    """Fail early, with the URL named, when a results location cannot be written."""
    probe = join(url, f".starfish-batch-write-check-{uuid.uuid4().hex[:8]}")
    try:
        write_bytes(probe, b"ok")
    except StorageError as exc:  # named by the folder the user gave, not by our probe file
        reason = str(exc.reason)
        reason = reason[len(f"cannot write {probe}: "):] if reason.startswith(f"cannot write {probe}: ") else reason
        reason = re.sub(re.escape(url.rstrip("/")) + r"/\.starfish-batch-write-check-[^\s:'\"]*", url, reason)
        raise StorageError(f"cannot write in the results folder {url}: {reason}", reason) from None
    try:
        backend(probe).delete(probe)
    except Exception:  # a probe we cannot delete is harmless
        pass
