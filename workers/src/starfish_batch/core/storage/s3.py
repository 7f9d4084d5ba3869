"""The ``s3://`` backend: each operation one S3 call (or one s3transfer call) on the process's
client. Errors are left to the caller, which names the URL (``objects``)."""

from __future__ import annotations

import os

from starfish_batch.core.storage.clients import s3_client
from starfish_batch.core.storage.urls import split_s3


def get(url: str) -> bytes:
    bucket, key = split_s3(url)
    return s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()


def get_tagged(url: str) -> tuple[bytes, str]:
    """The bytes and the ETag, from one GET."""
    bucket, key = split_s3(url)
    response = s3_client().get_object(Bucket=bucket, Key=key)
    return response["Body"].read(), str(response.get("ETag", ""))


def put(url: str, data: bytes, content_type: str | None = None, **condition: str) -> None:
    """One PUT; ``condition`` is ``IfNoneMatch="*"`` or ``IfMatch=<ETag>`` for a conditional one."""
    bucket, key = split_s3(url)
    extra = {"ContentType": content_type} if content_type else {}
    s3_client().put_object(Bucket=bucket, Key=key, Body=data, **extra, **condition)


def upload(local_path: str | os.PathLike, url: str) -> None:
    bucket, key = split_s3(url)
    s3_client().upload_file(str(local_path), bucket, key)


def download(url: str, dest: str | os.PathLike) -> None:
    bucket, key = split_s3(url)
    s3_client().download_file(bucket, key, str(dest))


def head(url: str) -> tuple[int, str | None]:
    """(size, ETag) of the object."""
    bucket, key = split_s3(url)
    response = s3_client().head_object(Bucket=bucket, Key=key)
    return int(response["ContentLength"]), response.get("ETag")


def delete(url: str) -> None:
    bucket, key = split_s3(url)
    s3_client().delete_object(Bucket=bucket, Key=key)


def copy(src_url: str, dest_url: str) -> None:
    """A copy inside S3 (multipart for large objects): no byte comes back to this machine."""
    src_bucket, src_key = split_s3(src_url)
    bucket, key = split_s3(dest_url)
    s3_client().copy({"Bucket": src_bucket, "Key": src_key}, bucket, key)


def list_under(prefix_url: str) -> dict[str, tuple[int, str | None]]:
    """(size, ETag) of each object under ``prefix_url`` (a "/"-ended prefix), names relative to it."""
    bucket, key = split_s3(prefix_url)
    found: dict[str, tuple[int, str | None]] = {}
    for page in s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
        found.update((obj["Key"][len(key):], (int(obj["Size"]), obj.get("ETag")))
                     for obj in page.get("Contents", []))
    return found
