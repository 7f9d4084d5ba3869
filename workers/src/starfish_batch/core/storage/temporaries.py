"""Local temporary files: the one way a file appears on disk (a hidden temporary name, then a
rename), and the sweep that removes what a killed process left."""

from __future__ import annotations

import contextlib
import glob
import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from starfish_batch.core.storage.failures import write_failure
from starfish_batch.core.storage.urls import is_s3, local_path

TEMP_MARK = ".sfb-tmp."
"""In every temporary file name: ``<dir>/.<name>.sfb-tmp.<host>.<pid>.<random><suffix>``, so
that the next attempt finds the ones a killed process left (``sweep_temporaries``)."""


def _host() -> str:
    return socket.gethostname().replace(".", "-") or "host"


@contextmanager
def temporary(directory: Path, name: str, suffix: str, url: str) -> Iterator[Path]:
    """A new empty file ``.<name>.sfb-tmp.<host>.<pid>.<random><suffix>`` in ``directory``
    (made 0600, then given the umask's mode), removed on exit whatever happens: its name is
    held before the file exists, so even a SIGTERM at any point leaves nothing behind."""
    tmp = Path(directory) / f".{name}{TEMP_MARK}{_host()}.{os.getpid()}.{uuid.uuid4().hex[:8]}{suffix}"
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
    host = _host()
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


@contextmanager
def replacing(path: Path, url: str, suffix: str = ".tmp") -> Iterator[Path]:
    """A hidden temporary file beside ``path``, renamed over it on success, removed on failure
    (or, when the process is killed, by the next write of ``path``): the one way a file
    appears on disk, so a reader never sees half of it."""
    with temporary(path.parent, path.name, suffix, url) as tmp:
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
    with temporary(directory, "starfish-batch", suffix or ".tmp", str(directory)) as tmp:
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
    path = local_path(url)
    with temporary(path.parent, path.name, suffix or ".tmp", url) as tmp:
        yield tmp


def publish_local(tmp: Path, url: str) -> None:
    """Rename a ``temporary_for(url)`` file over ``url``, as readable as any other file."""
    try:
        os.replace(tmp, local_path(url))
    except OSError as exc:
        raise write_failure(url, exc, tmp) from exc
