"""Whether a FOV's output is whole: ``fovs/<fov>.nc`` counts as done only when its record
``fovs/<fov>.json`` (written after it) gives its size and sha256 and the file matches them.

A worker killed while publishing, a disk that filled up, a copy cut short or a file edited
later all leave a table that is not what process-fov wrote; such a FOV is processed again
by its worker and by ``--resume``, and the merge names it instead of merging it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from starfish_batch import storage
from starfish_batch.contract import FOVS_DIR
from starfish_batch.errors import StarfishBatchError
from starfish_batch.manifest import Manifest
from starfish_batch.records import FovRecord

CHECK_THREADS = 8
"""Records read (S3) and tables hashed (disk) at a time when a resume checks a whole run."""


def mismatch(record: FovRecord, size: int | None, digest: storage.Digest | None = None) -> str | None:
    """Why a table of ``size`` bytes (and ``digest``, when it was read) is not the one
    ``record`` describes, or None when it is."""
    if record.nc_bytes is None or not record.nc_sha256:
        return "its record has no size and sha256 (written by an older or interrupted worker)"
    if size is None:
        return "it does not exist"
    if size != record.nc_bytes:
        return f"{size:,} bytes where its record says {record.nc_bytes:,}"
    if digest is not None and digest.sha256 != record.nc_sha256:
        return "its sha256 differs from its record's"
    return None


def read_record(manifest: Manifest, fov: str) -> FovRecord | None:
    """The FOV's record, or None when it is absent, unreadable, or made by another recipe."""
    url = manifest.fov_url(fov, ".json")
    try:
        data = storage.read_bytes(url)
    except StarfishBatchError:
        if storage.exists(url):  # there, but unreadable: a network fault, not a missing record
            raise
        return None
    try:
        record = FovRecord.from_json(data, url)
    except StarfishBatchError:
        return None
    return record if record.recipe_sha256 == manifest.recipe_sha256 else None


def whole(manifest: Manifest, fov: str, record: FovRecord, size: int | None) -> bool:
    """The check of a done FOV: the size (from a listing) always, the sha256 too on disk."""
    if mismatch(record, size) is not None:
        return False
    url = manifest.fov_url(fov, ".nc")
    if storage.is_s3(url):
        return True  # S3 stores an object whole or not at all; reading every table back is not cheap
    try:
        return mismatch(record, size, storage.Digest.of_file(storage.absolute(url))) is None
    except OSError:
        return False


def done_record(manifest: Manifest, fov: str) -> FovRecord | None:
    """This FOV's record when its table is whole for this recipe (a retry then has nothing to do)."""
    record = read_record(manifest, fov)
    if record is None:
        return None
    return record if whole(manifest, fov, record, storage.size(manifest.fov_url(fov, ".nc"))) else None


def completed(manifest: Manifest) -> set[str]:
    """The FOVs of the run whose table is whole: one listing, then the records of the FOVs it
    shows (and on disk their tables' digests) checked on a few threads."""
    sizes = storage.list_sizes(storage.join(manifest.run_root, FOVS_DIR))
    keys = manifest.keys
    candidates = [fov for fov in manifest.run_fovs if f"{keys[fov]}.nc" in sizes and f"{keys[fov]}.json" in sizes]

    def check(fov: str) -> bool:
        record = read_record(manifest, fov)
        return record is not None and whole(manifest, fov, record, sizes[f"{keys[fov]}.nc"])

    with ThreadPoolExecutor(max_workers=CHECK_THREADS, thread_name_prefix="check-fov") as pool:
        return {fov for fov, ok in zip(candidates, pool.map(check, candidates), strict=True) if ok}
