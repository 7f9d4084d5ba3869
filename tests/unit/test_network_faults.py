"""An S3 endpoint that accepts connections and never answers (a real socket on 127.0.0.1):
calls fail within the configured timeouts, say what they retry, and end in one line."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.support.faults import silent_endpoint

FAST = {"STARFISH_BATCH_CONNECT_TIMEOUT": "1", "STARFISH_BATCH_READ_TIMEOUT": "1"}
CALLS = """
import sys
from starfish_batch.core import storage
from starfish_batch.core.errors import StorageError
for call in (storage.exists, storage.read_bytes):
    try:
        call("s3://results/runs/r1/manifest.json")
    except StorageError as exc:
        print("StorageError:", exc)
    else:
        print("no error")
"""


def test_silent_endpoint_fails_in_seconds_with_retries_said():
    with silent_endpoint() as url:
        env = {**os.environ, **FAST, "AWS_ENDPOINT_URL": url}
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-c", CALLS], env=env, capture_output=True, text=True,
                              timeout=60)
        seconds = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-2000:]  # a StorageError each, no AttributeError
    lines = proc.stdout.splitlines()
    assert len(lines) == 2
    for line in lines:
        assert line.startswith("StorageError: cannot ") and "s3://results/runs/r1/manifest.json" in line
        assert "timeout" in line.lower()
    # each call: two attempts of about 1 s (the timeout retry budget), said on stderr
    assert proc.stderr.count("retrying (attempt 2 of 2)") == 2, proc.stderr
    assert seconds < 30
