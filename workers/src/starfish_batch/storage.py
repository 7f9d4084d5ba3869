"""Read and write local paths, ``file://`` and ``s3://`` URLs (and read ``https://``), always whole objects.

Every other module goes through here, so that a run behaves the same on a laptop and on
AWS Batch, and a reader never sees half a file: on disk we write a temporary name and
rename it; in S3 an object only appears once its upload completes.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from starfish_batch.errors import StorageError

RETRY_CONFIG = {"mode": "standard", "max_attempts": 8}
# Connections kept open per client: enough for a worker's parallel tile reads.
MAX_POOL_CONNECTIONS = 16
# https:// reads: (connect, read) seconds, so an endpoint that never answers fails instead of hanging.
HTTP_TIMEOUT = (10, 60)
HTTP_RETRY_STATUS = (429, 500, 502, 503, 504)


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


_region: str | None = None


def botocore_config():
    """The retry and connection settings of every AWS client starfish-batch makes."""
    from botocore.config import Config

    return Config(retries=RETRY_CONFIG, max_pool_connections=MAX_POOL_CONNECTIONS)


def use_region(region: str | None) -> None:
    """The region of the S3 client when the environment names none (the launcher sets the
    Terraform outputs' region, so a machine without an AWS config still works)."""
    global _region
    if region != _region:
        _region = region
        s3_client.cache_clear()


@functools.cache
def s3_client():
    """One client per process; boto3 itself honours ``AWS_ENDPOINT_URL`` and friends."""
    import boto3

    session = boto3.session.Session()
    region = None if session.region_name else _region
    return session.client("s3", region_name=region, config=botocore_config())


@functools.cache
def http_session():
    """One keep-alive session per process for ``https://`` experiments, with retries on 5xx."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    retry = Retry(total=5, backoff_factor=0.2, status_forcelist=HTTP_RETRY_STATUS,
                  allowed_methods=("GET", "HEAD"))
    adapter = HTTPAdapter(max_retries=retry, pool_maxsize=MAX_POOL_CONNECTIONS)
    session = requests.Session()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _describe(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        err = response.get("Error", {})
        code = err.get("Code", "")
        msg = err.get("Message", "")
        return f"{code}: {msg}".strip(": ") or str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _local(url: str) -> Path:
    return Path(absolute(url))


def read_bytes(url: str) -> bytes:
    try:
        if is_s3(url):
            bucket, key = split_s3(url)
            return s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
        if is_http(url):
            response = http_session().get(url, timeout=HTTP_TIMEOUT)
            response.raise_for_status()
            return response.content
        return _local(url).read_bytes()
    except StorageError:
        raise
    except Exception as exc:  # botocore, OSError: one line naming the URL
        reason = _describe(exc)
        raise StorageError(f"cannot read {url}: {reason}", reason) from exc


def read_text(url: str) -> str:
    return read_bytes(url).decode("utf-8")


def write_bytes(url: str, data: bytes) -> None:
    """Write ``data`` whole at ``url``: temporary name then rename, or one PUT."""
    try:
        if is_s3(url):
            bucket, key = split_s3(url)
            s3_client().put_object(Bucket=bucket, Key=key, Body=data)
            return
        with _replacing(_local(url), url) as tmp:
            tmp.write_bytes(data)
    except StorageError:
        raise
    except Exception as exc:
        raise StorageError(f"cannot write {url}: {_describe(exc)}") from exc


def write_text(url: str, text: str) -> None:
    write_bytes(url, text.encode("utf-8"))


def upload_file(local_path: str | os.PathLike, url: str) -> None:
    """Publish a finished local file at ``url`` whole (rename on disk, upload in S3)."""
    try:
        if is_s3(url):
            bucket, key = split_s3(url)
            s3_client().upload_file(str(local_path), bucket, key)
            return
        with _replacing(_local(url), url) as tmp:
            shutil.copyfile(local_path, tmp)
    except StorageError:
        raise
    except Exception as exc:
        raise StorageError(f"cannot write {url}: {_describe(exc)}") from exc


@contextmanager
def local_copy(url: str) -> Iterator[Path]:
    """A local path holding the object at ``url``: the file itself on disk, a temporary copy from S3."""
    if not is_s3(url):
        path = _local(url)
        if not path.is_file():
            raise StorageError(f"cannot read {url}: no such file")
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="starfish-batch-") as tmp:
        dest = Path(tmp) / url.rsplit("/", 1)[-1]
        try:
            bucket, key = split_s3(url)
            s3_client().download_file(bucket, key, str(dest))
        except Exception as exc:
            raise StorageError(f"cannot read {url}: {_describe(exc)}") from exc
        yield dest


@contextmanager
def _replacing(path: Path, url: str, suffix: str = ".tmp") -> Iterator[Path]:
    """A hidden temporary file beside ``path``, renamed over it on success, removed on failure:
    the one way a file appears on disk, so a reader never sees half of it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise StorageError(f"cannot write {url}: {_describe(exc)}") from exc
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(name, 0o666 & ~umask)  # mkstemp makes 0600; outputs are as readable as any other file
    tmp = Path(name)
    try:
        yield tmp
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise StorageError(f"cannot write {url}: {_describe(exc)}") from exc
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def staged_output(url: str, suffix: str = "") -> Iterator[Path]:
    """A local path to write; on clean exit it is published at ``url`` whole, on error nothing is."""
    if not is_s3(url):
        with _replacing(_local(url), url, suffix or ".tmp") as tmp:
            yield tmp
        return
    fd, name = tempfile.mkstemp(prefix=".starfish-batch-", suffix=suffix or ".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        upload_file(tmp, url)
    finally:
        tmp.unlink(missing_ok=True)


def exists(url: str) -> bool:
    try:
        if is_s3(url):
            bucket, key = split_s3(url)
            s3_client().head_object(Bucket=bucket, Key=key)
            return True
        return _local(url).is_file()
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchKey", "NotFound"):
            return False
        raise StorageError(f"cannot check {url}: {_describe(exc)}") from exc


def list_names(prefix_url: str) -> list[str]:
    """Names of the objects directly or indirectly under ``prefix_url`` (relative to it)."""
    base = prefix_url.rstrip("/") + "/"
    try:
        if is_s3(base):
            bucket, key = split_s3(base)
            names: list[str] = []
            paginator = s3_client().get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=bucket, Prefix=key):
                names.extend(obj["Key"][len(key):] for obj in page.get("Contents", []))
            return sorted(names)
        root = _local(base)
        if not root.is_dir():
            return []
        return sorted(
            str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")
        )
    except StorageError:
        raise
    except Exception as exc:
        raise StorageError(f"cannot list {prefix_url}: {_describe(exc)}") from exc


def check_writable(url: str) -> None:
    """Fail early, with the URL named, when a results location cannot be written."""
    probe = join(url, f".starfish-batch-write-check-{uuid.uuid4().hex[:8]}")
    write_bytes(probe, b"ok")
    try:
        if is_s3(probe):
            bucket, key = split_s3(probe)
            s3_client().delete_object(Bucket=bucket, Key=key)
        else:
            _local(probe).unlink(missing_ok=True)
    except Exception:  # a probe we cannot delete is harmless
        pass


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
    dest = _local(url)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    except OSError as exc:
        raise StorageError(f"cannot write {url}: {_describe(exc)}") from exc
    try:
        yield tmp / dest.name
        old = tmp / "old"
        try:
            if dest.exists():
                os.replace(dest, old)
            os.replace(tmp / dest.name, dest)
        except OSError as exc:
            raise StorageError(f"cannot write {url}: {_describe(exc)}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
