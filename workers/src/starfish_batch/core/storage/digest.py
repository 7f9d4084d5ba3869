"""Size and sha256 of what is written or read, computed as the bytes pass."""

from __future__ import annotations

import hashlib
import os

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
