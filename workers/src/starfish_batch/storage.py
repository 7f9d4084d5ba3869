"""Read and write local paths, ``file://`` and ``s3://`` URLs (and read ``https://``), always whole objects.

Every other module goes through here, so that a run behaves the same on a laptop and on
AWS Batch, and a reader never sees half a file: on disk we write a temporary name and
rename it; in S3 an object only appears once its upload completes.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import glob
import hashlib
import os
import re
import shutil
import socket
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from starfish_batch.errors import AlreadyExists, StorageError

# Network limits of every S3 and https:// call, so that an endpoint that accepts connections and
# never answers fails in a minute or two instead of hanging. Each can be set in the environment
# (tests shorten them to seconds): seconds to connect, seconds without a byte read, attempts in
# all (S3 throttling and 5xx errors), and attempts when the endpoint does not answer at all.
CONNECT_TIMEOUT_VAR = "STARFISH_BATCH_CONNECT_TIMEOUT"
READ_TIMEOUT_VAR = "STARFISH_BATCH_READ_TIMEOUT"
MAX_ATTEMPTS_VAR = "STARFISH_BATCH_MAX_ATTEMPTS"
TIMEOUT_ATTEMPTS_VAR = "STARFISH_BATCH_TIMEOUT_ATTEMPTS"
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0
DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_TIMEOUT_ATTEMPTS = 2
# Connections kept open per client: enough for a worker's parallel tile reads.
MAX_POOL_CONNECTIONS = 16
HTTP_RETRY_STATUS = (429, 500, 502, 503, 504)
TEMP_MARK = ".sfb-tmp."
"""In every temporary file name: ``<dir>/.<name>.sfb-tmp.<host>.<pid>.<random><suffix>``, so
that the next attempt finds the ones a killed process left (``sweep_temporaries``)."""


def _env_number(name: str, default: float, kind=float):
    raw = os.environ.get(name, "")
    try:
        value = kind(raw) if raw.strip() else default
    except ValueError:
        raise StorageError(f"{name}={raw!r} is not a number") from None
    if value <= 0:
        raise StorageError(f"{name}={raw!r} must be positive")
    return value


def timeouts() -> tuple[float, float]:
    """(connect, read) seconds of every network call."""
    return (_env_number(CONNECT_TIMEOUT_VAR, DEFAULT_CONNECT_TIMEOUT),
            _env_number(READ_TIMEOUT_VAR, DEFAULT_READ_TIMEOUT))


def max_attempts() -> int:
    return _env_number(MAX_ATTEMPTS_VAR, DEFAULT_MAX_ATTEMPTS, int)


def timeout_attempts() -> int:
    return min(max_attempts(), _env_number(TIMEOUT_ATTEMPTS_VAR, DEFAULT_TIMEOUT_ATTEMPTS, int))


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
    """The retry, timeout and connection settings of every AWS client starfish-batch makes."""
    from botocore.config import Config

    connect, read = timeouts()
    return Config(retries={"mode": "standard", "max_attempts": max_attempts()},
                  connect_timeout=connect, read_timeout=read,
                  max_pool_connections=MAX_POOL_CONNECTIONS)


def _is_timeout(exc: BaseException | None) -> bool:
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import ReadTimeoutError

    return isinstance(exc, BotoConnectionError | ReadTimeoutError | TimeoutError)


def watch_retries(client, service: str):
    """Say on stderr what is retried and why (botocore retries in silence), and give up on an
    endpoint that does not answer after ``timeout_attempts()`` tries, not ``max_attempts()``:
    throttling deserves many retries, a silent endpoint two."""
    limit, budget = max_attempts(), timeout_attempts()

    def on_needs_retry(attempts, caught_exception=None, response=None, operation=None, **_):
        timed_out = _is_timeout(caught_exception)
        if timed_out and attempts >= budget:
            raise caught_exception  # botocore has no other way to stop its retries early
        if caught_exception is not None:
            reason = str(caught_exception) or type(caught_exception).__name__
        else:
            parsed = response[1] if isinstance(response, tuple) and len(response) > 1 else {}
            status = parsed.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if status < 500 and status != 429:
                return None
            reason = f"HTTP {status}"
        if attempts < limit:
            print(f"starfish-batch: {service} {getattr(operation, 'name', 'request')}: {reason}; "
                  f"retrying (attempt {attempts + 1} of {budget if timed_out else limit})",
                  file=sys.stderr, flush=True)
        return None

    event = f"needs-retry.{client.meta.service_model.service_id.hyphenize()}"  # "cloudwatch-logs"
    client.meta.events.register_first(event, on_needs_retry)
    return client


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
    return watch_retries(session.client("s3", region_name=region, config=botocore_config()), "s3")


@functools.cache
def http_session():
    """One keep-alive session per process for ``https://`` experiments, with retries on 5xx."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    retry = Retry(total=max_attempts() - 1, connect=timeout_attempts() - 1, read=timeout_attempts() - 1,
                  backoff_factor=0.2, status_forcelist=HTTP_RETRY_STATUS, allowed_methods=("GET", "HEAD"))
    adapter = HTTPAdapter(max_retries=retry, pool_maxsize=MAX_POOL_CONNECTIONS)
    session = requests.Session()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _http_reason(exc: Exception) -> str | None:
    """requests' nested errors in a scientist's words: host not found, refused, no answer, HTTP 404."""
    requests = sys.modules.get("requests")
    if requests is None:  # not an https error: requests was never used (and importing it costs 0.1 s)
        return None

    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code} {exc.response.reason}".strip()
    if not isinstance(exc, requests.RequestException):
        return None
    inner = exc.args[0] if exc.args else None
    inner = getattr(inner, "reason", inner)  # urllib3's MaxRetryError wraps the last attempt's error
    host = getattr(exc.request, "url", None) and urlparse(exc.request.url).netloc
    where = f" {host}" if host else ""
    if isinstance(exc, requests.Timeout) or "timed out" in str(inner).lower():
        return f"no answer from{where} in time (timed out after retries)"
    cause = getattr(inner, "__cause__", None) or getattr(inner, "__context__", None)
    if isinstance(cause, OSError) and cause.strerror:
        if "name or service" in cause.strerror.lower() or "nodename" in cause.strerror.lower():
            return f"host{where} not found ({cause.strerror})"
        return f"cannot reach{where}: {cause.strerror}"
    return None


def _error_code(exc: BaseException) -> str:
    """An AWS error's code, or "" (a timeout or connection error has ``response = None``)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


def _describe(exc: Exception) -> str:
    reason = _http_reason(exc)
    if reason:
        return reason
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
            response = http_session().get(url, timeout=timeouts())
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


def write_bytes(url: str, data: bytes, content_type: str | None = None) -> None:
    """Write ``data`` whole at ``url``: temporary name then rename, or one PUT (with
    ``content_type`` as its Content-Type, when given)."""
    try:
        if is_s3(url):
            bucket, key = split_s3(url)
            extra = {"ContentType": content_type} if content_type else {}
            s3_client().put_object(Bucket=bucket, Key=key, Body=data, **extra)
            return
        with _replacing(_local(url), url) as tmp:
            try:
                tmp.write_bytes(data)
            except OSError as exc:
                raise write_failure(url, exc, tmp) from exc
    except StorageError:
        raise
    except Exception as exc:
        raise StorageError(f"cannot write {url}: {_describe(exc)}") from exc


def write_text(url: str, text: str, content_type: str | None = None) -> None:
    write_bytes(url, text.encode("utf-8"), content_type)


def create_exclusive(url: str, data: bytes) -> None:
    """Write ``data`` at ``url`` only if nothing is there: one claimant wins, the others get AlreadyExists.

    On disk an exclusive create (``O_EXCL``); in S3 a conditional PUT (``If-None-Match: *``).
    """
    try:
        if is_s3(url):
            bucket, key = split_s3(url)
            s3_client().put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
            return
        path = _local(url)
        with _temporary(path.parent, path.name, ".tmp", url) as tmp:
            tmp.write_bytes(data)  # written whole first, then linked in only if the name is free
            os.link(tmp, path)
    except FileExistsError:
        raise AlreadyExists(f"{url} already exists", "already exists") from None
    except StorageError:
        raise
    except Exception as exc:
        if _error_code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
            raise AlreadyExists(f"{url} already exists", "already exists") from None
        raise StorageError(f"cannot write {url}: {_describe(exc)}") from exc


def read_tagged(url: str) -> tuple[bytes, str]:
    """The object's bytes and a tag that changes whenever it is rewritten: the S3 ETag, or on
    disk the bytes themselves (``replace_if`` compares them under a kernel lock)."""
    try:
        if is_s3(url):
            bucket, key = split_s3(url)
            response = s3_client().get_object(Bucket=bucket, Key=key)
            return response["Body"].read(), str(response.get("ETag", ""))
    except Exception as exc:
        if _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            raise AlreadyExists(f"{url} is gone", "gone") from None
        raise StorageError(f"cannot read {url}: {_describe(exc)}", _describe(exc)) from exc
    try:
        data = _local(url).read_bytes()
    except FileNotFoundError:
        raise AlreadyExists(f"{url} is gone", "gone") from None
    except OSError as exc:
        raise StorageError(f"cannot read {url}: {_describe(exc)}", _describe(exc)) from exc
    return data, hashlib.sha256(data).hexdigest()


def replace_if(url: str, tag: str, data: bytes) -> None:
    """Write ``data`` at ``url`` only if the object there is still the one ``read_tagged`` gave
    ``tag``: of several writers holding the same tag exactly one succeeds, the others get
    AlreadyExists. In S3 a conditional PUT (``If-Match: <ETag>``: AWS answers 412
    PreconditionFailed, or 409 ConditionalRequestConflict to a concurrent one); on disk the
    compare and the rename happen under an exclusive ``flock`` of ``.<name>.guard`` beside it,
    held by the kernel (released if the holder dies)."""
    lost = AlreadyExists(f"{url} changed meanwhile", "changed meanwhile")
    if is_s3(url):
        bucket, key = split_s3(url)
        try:
            s3_client().put_object(Bucket=bucket, Key=key, Body=data, IfMatch=tag)
            return
        except Exception as exc:
            if _error_code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409",
                                    "404", "NoSuchKey", "NotFound"):
                raise lost from None
            raise StorageError(f"cannot write {url}: {_describe(exc)}") from exc
    import fcntl

    path = _local(url)
    try:
        fd = os.open(path.parent / f".{path.name}.guard", os.O_CREAT | os.O_RDWR, 0o600)
    except OSError as exc:
        raise StorageError(f"cannot write {url}: {_describe(exc)}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # every replace_if of this file, one at a time
        try:
            current = path.read_bytes()
        except FileNotFoundError:
            raise lost from None
        if hashlib.sha256(current).hexdigest() != tag:
            raise lost
        write_bytes(url, data)  # a rename: readers see the old bytes or the new, never a mix
    finally:
        os.close(fd)  # releases the lock


def upload_file(local_path: str | os.PathLike, url: str) -> None:
    """Publish a finished local file at ``url`` whole (rename on disk, upload in S3)."""
    try:
        if is_s3(url):
            bucket, key = split_s3(url)
            s3_client().upload_file(str(local_path), bucket, key)
            return
        with _replacing(_local(url), url) as tmp:
            try:
                shutil.copyfile(local_path, tmp)
            except OSError as exc:
                raise write_failure(url, exc, tmp) from exc
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
    with local_temporary("-" + url.rsplit("/", 1)[-1]) as dest:
        try:
            bucket, key = split_s3(url)
            s3_client().download_file(bucket, key, str(dest))
        except Exception as exc:
            if no_space_left(exc, dest):
                raise write_failure(str(dest), exc, dest) from exc
            raise StorageError(f"cannot read {url}: {_describe(exc)}") from exc
        yield dest


@contextmanager
def _temporary(directory: Path, name: str, suffix: str, url: str) -> Iterator[Path]:
    """A new empty file ``.<name>.sfb-tmp.<host>.<pid>.<random><suffix>`` in ``directory``
    (made 0600, then given the umask's mode), removed on exit whatever happens: its name is
    held before the file exists, so even a SIGTERM at any point leaves nothing behind."""
    host = socket.gethostname().replace(".", "-") or "host"
    tmp = Path(directory) / f".{name}{TEMP_MARK}{host}.{os.getpid()}.{uuid.uuid4().hex[:8]}{suffix}"
    try:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            sweep_temporaries(directory, name)
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # outputs are as readable as any other file
        except OSError as exc:
            raise write_failure(url, exc, directory) from exc
        yield tmp
    finally:
        with contextlib.suppress(OSError):  # e.g. the folder is a file: the error is said above
            tmp.unlink(missing_ok=True)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host still runs (someone else's process counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def sweep_temporaries(directory: str | os.PathLike, name: str = "") -> list[Path]:
    """Remove the temporary files of ``name`` (any when "") in ``directory`` that a process of
    this host left when it was killed (its pid is gone): a killed merge leaves hundreds of MB."""
    host = socket.gethostname().replace(".", "-") or "host"
    removed = []
    try:
        candidates = list(Path(directory).glob(f".{glob.escape(name)}{TEMP_MARK}*" if name
                                               else f".*{TEMP_MARK}*"))
    except OSError:
        return removed
    for path in candidates:
        rest = path.name.split(TEMP_MARK, 1)[1].split(".")
        if len(rest) < 3 or rest[0] != host or not rest[1].isdigit():
            continue
        pid = int(rest[1])
        if pid == os.getpid() or pid_alive(pid):
            continue
        try:
            path.unlink()
            removed.append(path)
        except OSError:
            pass
    return removed


def no_space_left(exc: BaseException, where: str | os.PathLike | None = None) -> bool:
    """Whether a write failed for a full disk: ENOSPC anywhere in the chain, HDF5's copy of its
    message, or (netCDF says only "HDF error") the filesystem of ``where`` being full."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    if where is None:
        return False
    try:
        st = os.statvfs(Path(where) if Path(where).is_dir() else Path(where).parent)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < NEARLY_FULL_BYTES


NEARLY_FULL_BYTES = 1 << 20
"""Free space under which a write failure that does not say why is put down to a full disk."""


def write_failure(url: str, exc: BaseException, local: str | os.PathLike | None = None) -> StorageError:
    """The one-line error of a failed write of ``url`` (through the local file ``local``):
    "no space left on device" and the place that is full, when that is the cause."""
    if isinstance(exc, StorageError) and "no space left" in str(exc):
        return exc
    if no_space_left(exc, local):
        where = Path(local).parent if local is not None else None
        place = f" (in {where})" if where is not None and str(where) not in url else ""
        return StorageError(f"cannot write {url}: no space left on device{place}", "no space left on device")
    if isinstance(exc, StorageError):
        return exc
    return StorageError(f"cannot write {url}: {_describe(exc)}")


@contextmanager
def _replacing(path: Path, url: str, suffix: str = ".tmp") -> Iterator[Path]:
    """A hidden temporary file beside ``path``, renamed over it on success, removed on failure
    (or, when the process is killed, by the next write of ``path``): the one way a file
    appears on disk, so a reader never sees half of it."""
    with _temporary(path.parent, path.name, suffix, url) as tmp:
        yield tmp
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise write_failure(url, exc, tmp) from exc


@contextmanager
def local_temporary(suffix: str = "") -> Iterator[Path]:
    """A temporary file in the system's temporary folder (for what goes to S3), removed after
    use, or by the next process's sweep when this one is killed."""
    directory = Path(tempfile.gettempdir())
    with _temporary(directory, "starfish-batch", suffix or ".tmp", str(directory)) as tmp:
        yield tmp


@contextmanager
def temporary_for(url: str, suffix: str = "") -> Iterator[Path]:
    """A local file to write what will be published at ``url`` by ``publish_local`` or
    ``upload_file``: beside it on disk (publishing is then a rename), in the temporary folder
    for S3. Removed on exit when it is still there."""
    if is_s3(url):
        with local_temporary(suffix) as tmp:
            yield tmp
        return
    path = _local(url)
    with _temporary(path.parent, path.name, suffix or ".tmp", url) as tmp:
        yield tmp


def publish_local(tmp: Path, url: str) -> None:
    """Rename a ``temporary_for(url)`` file over ``url``, as readable as any other file."""
    try:
        os.replace(tmp, _local(url))
    except OSError as exc:
        raise write_failure(url, exc, tmp) from exc


@contextmanager
def staged_output(url: str, suffix: str = "") -> Iterator[Path]:
    """A local path to write; on clean exit it is published at ``url`` whole, on error nothing is."""
    if not is_s3(url):
        with _replacing(_local(url), url, suffix or ".tmp") as tmp:
            yield tmp
        return
    with local_temporary(suffix) as tmp:
        yield tmp
        upload_file(tmp, url)


def is_dir(url: str) -> bool:
    """A local folder (S3 and https have none)."""
    return not is_s3(url) and not is_http(url) and _local(url).is_dir()


def exists(url: str) -> bool:
    try:
        if is_s3(url):
            bucket, key = split_s3(url)
            s3_client().head_object(Bucket=bucket, Key=key)
            return True
        return _local(url).is_file()
    except Exception as exc:
        code = _error_code(exc)
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
    try:
        write_bytes(probe, b"ok")
    except StorageError as exc:  # named by the folder the user gave, not by our probe file
        reason = str(exc.reason)
        reason = reason[len(f"cannot write {probe}: "):] if reason.startswith(f"cannot write {probe}: ") else reason
        reason = re.sub(re.escape(url.rstrip("/")) + r"/\.starfish-batch-write-check-[^\s:'\"]*", url, reason)
        raise StorageError(f"cannot write in the results folder {url}: {reason}", reason) from None
    try:
        if is_s3(probe):
            bucket, key = split_s3(probe)
            s3_client().delete_object(Bucket=bucket, Key=key)
        else:
            _local(probe).unlink(missing_ok=True)
    except Exception:  # a probe we cannot delete is harmless
        pass


def list_sizes(prefix_url: str) -> dict[str, int]:
    """Size in bytes of each object under ``prefix_url`` (names relative to it; hidden local
    files left out), from one listing."""
    base = prefix_url.rstrip("/") + "/"
    try:
        if is_s3(base):
            bucket, key = split_s3(base)
            sizes: dict[str, int] = {}
            paginator = s3_client().get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=bucket, Prefix=key):
                sizes.update((obj["Key"][len(key):], int(obj["Size"])) for obj in page.get("Contents", []))
            return sizes
        root = _local(base)
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
    except StorageError:
        raise
    except Exception as exc:
        raise StorageError(f"cannot list {prefix_url}: {_describe(exc)}") from exc


def list_objects(prefix_url: str) -> dict[str, tuple[int, str | None]]:
    """(size, ETag) of each object under ``prefix_url`` from one listing (ETag None on disk)."""
    if not is_s3(prefix_url):
        return {name: (n, None) for name, n in list_sizes(prefix_url).items()}
    base = prefix_url.rstrip("/") + "/"
    bucket, key = split_s3(base)
    found: dict[str, tuple[int, str | None]] = {}
    try:
        for page in s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
            found.update((obj["Key"][len(key):], (int(obj["Size"]), obj.get("ETag")))
                         for obj in page.get("Contents", []))
    except Exception as exc:
        raise StorageError(f"cannot list {prefix_url}: {_describe(exc)}") from exc
    return found


def size_and_etag(url: str) -> tuple[int | None, str | None]:
    """The object's size (None: absent) and, in S3, its ETag."""
    if not is_s3(url):
        return size(url), None
    try:
        bucket, key = split_s3(url)
        head = s3_client().head_object(Bucket=bucket, Key=key)
        return int(head["ContentLength"]), head.get("ETag")
    except Exception as exc:
        if _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            return None, None
        raise StorageError(f"cannot check {url}: {_describe(exc)}") from exc


def size(url: str) -> int | None:
    """The object's size in bytes, or None when there is none."""
    try:
        if is_s3(url):
            bucket, key = split_s3(url)
            return int(s3_client().head_object(Bucket=bucket, Key=key)["ContentLength"])
        path = _local(url)
        return path.stat().st_size if path.is_file() else None
    except Exception as exc:
        if _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise StorageError(f"cannot check {url}: {_describe(exc)}") from exc


def delete(url: str) -> None:
    """Remove the object at ``url`` if there is one."""
    try:
        if is_s3(url):
            bucket, key = split_s3(url)
            s3_client().delete_object(Bucket=bucket, Key=key)
        else:
            _local(url).unlink(missing_ok=True)
    except Exception as exc:
        raise StorageError(f"cannot delete {url}: {_describe(exc)}") from exc


def copy_object(src_url: str, dest_url: str) -> None:
    """An S3 copy inside S3 (multipart for large objects): no byte comes back to this machine."""
    try:
        src_bucket, src_key = split_s3(src_url)
        bucket, key = split_s3(dest_url)
        s3_client().copy({"Bucket": src_bucket, "Key": src_key}, bucket, key)
    except Exception as exc:
        raise StorageError(f"cannot write {dest_url}: {_describe(exc)}") from exc


HASH_CHUNK = 1 << 20


class Digest:
    """Size and sha256 of bytes seen in pieces (a file as it is read)."""

    def __init__(self) -> None:
        self.size = 0
        self._sha = hashlib.sha256()

    def update(self, data: bytes | memoryview) -> None:
        self.size += len(data)
        self._sha.update(data)

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    @classmethod
    def of_bytes(cls, data: bytes) -> Digest:
        digest = cls()
        digest.update(data)
        return digest

    @classmethod
    def of_file(cls, path: str | os.PathLike) -> Digest:
        digest = cls()
        with open(path, "rb", buffering=0) as f:
            buf = bytearray(HASH_CHUNK)
            view = memoryview(buf)
            while n := f.readinto(buf):
                digest.update(view[:n])
        return digest


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
