"""The ``https://`` backend: read only (public experiments), on the process's keep-alive session."""

from __future__ import annotations

from starfish_batch.core.storage.clients import http_session, timeouts


def get(url: str) -> bytes:
    response = http_session().get(url, timeout=timeouts())
    response.raise_for_status()
    return response.content
