"""The merge's outputs published as one set: all of them, or none as final.

Each output is written to a temporary file first. Once every one is complete they are
published together, the merged table last (its presence says the merge finished): on disk
by renames in the run folder; in S3 by uploads to staging keys under
``<run>/.merge-staging/`` and then copies inside S3 to the final keys. If any step fails,
the outputs already published by this merge are removed again and the staging keys deleted,
so a failed upload of the merged table never leaves summary.json or qc.png looking final.
Staging keys a killed merge left are removed by the next merge of the run.
"""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

from starfish_batch.core import storage

STAGING_DIR = ".merge-staging"


class OutputSet:
    """Temporary local paths for ``outputs`` (key -> final URL), published in ``order``."""

    def __init__(self, run_root: str, outputs: dict[str, str], order: list[str]):
        self.run_root = run_root
        self.outputs = outputs
        self.order = order
        self.paths: dict[str, Path] = {}
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> OutputSet:
        if storage.is_s3(self.run_root):
            sweep_staging(self.run_root)
        try:
            for key, url in self.outputs.items():
                suffix = "." + url.rsplit("/", 1)[-1].split(".", 1)[-1]
                self.paths[key] = self._stack.enter_context(storage.temporary_for(url, suffix))
        except BaseException:
            self._stack.close()
            raise
        return self

    def add(self, key: str, url: str) -> Path:
        """One more output of the set, known only late (``cells.h5ad``): published before the last."""
        self.outputs[key] = url
        suffix = "." + url.rsplit("/", 1)[-1].split(".", 1)[-1]
        self.paths[key] = self._stack.enter_context(storage.temporary_for(url, suffix))
        self.order.insert(len(self.order) - 1, key)
        return self.paths[key]

    def __exit__(self, *exc) -> None:
        self._stack.close()  # the temporary files, whether published or not

    def publish(self) -> None:
        if storage.is_s3(self.run_root):
            self._publish_s3()
        else:
            self._publish(lambda key: storage.publish_local(self.paths[key], self.outputs[key]))

    def _publish(self, step) -> None:
        done: list[str] = []
        try:
            for key in self.order:
                step(key)
                done.append(key)
        except BaseException:
            for key in done:  # none of the set stays final without the others
                with contextlib.suppress(Exception):
                    storage.delete(self.outputs[key])
            raise

    def _publish_s3(self) -> None:
        staging = storage.join(self.run_root, STAGING_DIR, uuid.uuid4().hex[:12])
        staged: dict[str, str] = {}
        try:
            for key in self.order:  # the long part (hundreds of MB): nothing is final yet
                url = storage.join(staging, self.outputs[key].rsplit("/", 1)[-1])
                storage.upload_file(self.paths[key], url)
                staged[key] = url
            self._publish(lambda key: storage.copy_object(staged[key], self.outputs[key]))
        finally:
            for url in staged.values():
                with contextlib.suppress(Exception):
                    storage.delete(url)


def sweep_staging(run_root: str) -> None:
    """Delete the staging keys an earlier merge of the run left when it was killed."""
    base = storage.join(run_root, STAGING_DIR)
    for name in storage.list_names(base):
        with contextlib.suppress(Exception):
            storage.delete(storage.join(base, name))
