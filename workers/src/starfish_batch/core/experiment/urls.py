"""Where a document's references point: resolved as slicedimage resolves them.

SpaceTx documents name other documents and tiles by relative or absolute URL. A relative one
is joined onto the directory of the document that names it (slicedimage's rule, kept exactly,
so a view opens the same objects as ``Experiment.from_json``). Local paths travel as plain
paths, which is what :mod:`starfish_batch.core.storage` reads.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from urllib.parse import unquote, urlparse, urlunparse

REMOTE_SCHEMES = ("s3", "http", "https")


def normalize(url: str) -> str:
    """``s3://`` and ``http(s)://`` unchanged; ``file://`` URLs and relative paths as absolute paths."""
    parsed = urlparse(url)
    if parsed.scheme in REMOTE_SCHEMES:
        return url
    if parsed.scheme == "file":
        return unquote(parsed.path)
    return str(Path(url).expanduser().absolute())


def resolve(reference: str, document_url: str) -> str:
    """The URL of ``reference`` as named by the document at ``document_url``."""
    if urlparse(reference).scheme:  # already absolute: s3://, https://, file://
        return normalize(reference)
    parsed = urlparse(document_url)
    if parsed.scheme in REMOTE_SCHEMES:
        path = posixpath.join(posixpath.dirname(parsed.path), reference)
        return urlunparse(parsed._replace(path=path))
    return str(Path(posixpath.join(posixpath.dirname(document_url), reference)).absolute())


def slicedimage_baseurl(document_url: str) -> str:
    """The base URL slicedimage gives a document's contents: its directory, ``file://`` when local."""
    parsed = urlparse(document_url)
    if parsed.scheme in REMOTE_SCHEMES:
        return urlunparse(parsed._replace(path=posixpath.dirname(parsed.path)))
    return Path(document_url).parent.absolute().as_uri()
