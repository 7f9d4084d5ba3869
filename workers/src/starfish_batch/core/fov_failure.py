"""``failures/<key>.json``: why a FOV of a packed child failed. A packed process-fov child writes
one when a FOV fails and goes on with the next (``process_fov.slice``); the launcher reads them to
report the FOV and to decide whether a retry or more memory can help."""

from __future__ import annotations

from dataclasses import dataclass

from starfish_batch.core import storage
from starfish_batch.core.contract import FAILURES_DIR
from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.core.manifest import Manifest
from starfish_batch.core.records import _JsonRecord


@dataclass
class FovFailure(_JsonRecord):
    """``failures/<key>.json``: why a FOV of a packed child failed (read by the launcher)."""

    KIND = "FOV failure record"

    fov: str
    index: int
    reason: str
    run_id: str = ""
    recipe_sha256: str = ""
    retryable: bool = False  # a retry of the same job could succeed (storage, network)
    out_of_memory: bool = False  # the launcher resubmits such FOVs with more memory
    job_id: str = ""
    failed_at: str = ""


def failure_url(manifest: Manifest, fov: str) -> str:
    return storage.join(manifest.run_root, FAILURES_DIR, f"{manifest.keys[fov]}.json")


def recorded_failures(manifest: Manifest, fovs: list[str] | None = None) -> dict[str, FovFailure]:
    """The failure records of ``fovs`` (default: the manifest's) written by this run's recipe."""
    wanted = set(manifest.fovs if fovs is None else fovs)
    root = storage.join(manifest.run_root, FAILURES_DIR)
    names = set(storage.list_names(root))
    found: dict[str, FovFailure] = {}
    for fov in wanted:
        name = f"{manifest.keys[fov]}.json"
        if name not in names:
            continue
        url = storage.join(root, name)
        try:
            failure = FovFailure.from_json(storage.read_bytes(url), url)
        except StarfishBatchError:
            continue
        if failure.fov == fov and failure.recipe_sha256 == manifest.recipe_sha256:
            found[fov] = failure
    return found
