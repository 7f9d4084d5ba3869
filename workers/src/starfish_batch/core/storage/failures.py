"""A failed call in one line: the reason of a botocore, requests or OS error in a scientist's
words, and a full disk recognised wherever it hides."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from urllib.parse import urlparse

from starfish_batch.core.errors import StorageError

NOT_FOUND = ("404", "NoSuchKey", "NotFound")
"""The error codes of an S3 object that is not there."""
PRECONDITION_FAILED = ("PreconditionFailed", "412", "ConditionalRequestConflict")
"""The error codes of a conditional PUT that lost (409 ConditionalRequestConflict: a concurrent one)."""

NEARLY_FULL_BYTES = 1 << 20
"""Free space under which a write failure that does not say why is put down to a full disk."""


def http_reason(exc: Exception) -> str | None:
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


def error_code(exc: BaseException) -> str:
    """An AWS error's code, or "" (a timeout or connection error has ``response = None``)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


def describe(exc: Exception) -> str:
    """The reason alone, for a message that names the URL itself."""
    reason = http_reason(exc)
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
    return StorageError(f"cannot write {url}: {describe(exc)}")
