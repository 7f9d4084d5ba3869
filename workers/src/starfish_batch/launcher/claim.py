"""One launcher per run: a claim taken with an exclusive create, released when the launcher ends.

Two launchers given the same ``--run-id``, or two ``--resume`` of one run, would each start
workers over the same FOVs (and one could run the other's recipe). The claim is a small
``launcher.lock`` object in the run folder, created only if absent (``O_EXCL`` on disk, a
conditional PUT in S3), so exactly one launcher wins; the others stop with a message naming the
holder. A claim left by a launcher that died on this machine is noticed and taken over by
replacing it only if it is still the claim that was read (``storage.replace_if``: ``If-Match``
on its ETag in S3, a compare and rename under a kernel lock on disk), so of several launchers
taking over one dead claim exactly one wins, too.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import socket

from starfish_batch.core import storage
from starfish_batch.core.contract import LOCK_NAME
from starfish_batch.core.errors import AlreadyExists, StarfishBatchError, StorageError


class RunClaim:
    """Held by the launcher that starts or resumes a run, for as long as it follows the run."""

    def __init__(self) -> None:
        self.url: str | None = None
        self.host = socket.gethostname()
        self.pid = os.getpid()

    def _body(self) -> bytes:
        started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        return json.dumps({"host": self.host, "pid": self.pid, "started_at": started,
                           "claim": secrets.token_hex(8)}).encode() + b"\n"

    def acquire(self, run_root: str, run_id: str) -> None:
        url = storage.join(run_root, LOCK_NAME)
        body = self._body()  # unique to this launcher: a retried write that did land is recognised
        for _ in range(3):  # a claim released between our create and our read: create again
            try:
                storage.create_exclusive(url, body)
                break
            except AlreadyExists:
                pass
            try:
                data, tag = storage.read_tagged(url)
            except AlreadyExists:
                continue
            if data == body:
                break  # our own create, retried after an error whose first attempt had succeeded
            holder = self._parse(data)
            if not self._stale(holder):
                raise StarfishBatchError(
                    f"run {run_id} is in use by another launcher ({self._describe(holder)}); wait for it "
                    f"to end, or, if no launcher is running for this run any more, delete {url} and retry"
                )
            try:  # its launcher died on this machine: take the claim over, if nobody did meanwhile
                storage.replace_if(url, tag, body)
                break
            except AlreadyExists:
                if self._holds(url, body):
                    break  # our conditional write landed; its retry was the one refused
                raise StarfishBatchError(f"run {run_id} was claimed by another launcher just now") from None
        else:
            raise StarfishBatchError(f"run {run_id} is claimed and released again and again by other launchers")
        self.url = url

    @staticmethod
    def _holds(url: str, body: bytes) -> bool:
        try:
            return storage.read_tagged(url)[0] == body
        except StarfishBatchError:
            return False

    def release(self) -> None:
        if self.url is not None:
            try:
                storage.delete(self.url)
            except StorageError:
                pass  # a claim we cannot remove is reported as stale, with its URL, next time
            self.url = None

    def __enter__(self) -> RunClaim:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    @staticmethod
    def _parse(data: bytes) -> dict:
        try:
            holder = json.loads(data)
            return holder if isinstance(holder, dict) else {}
        except ValueError:
            return {}

    def _stale(self, holder: dict) -> bool:
        pid = holder.get("pid")
        return holder.get("host") == self.host and isinstance(pid, int) and not storage.pid_alive(pid)

    @staticmethod
    def _describe(holder: dict) -> str:
        if not holder:
            return "holder unknown"
        return f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('started_at')}"
