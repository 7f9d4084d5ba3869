"""Whether a FOV's output is whole: ``fovs/<fov>.nc`` counts as done only when its record
``fovs/<fov>.json`` (written after it) gives its size and sha256 and the file matches them.

A worker killed while publishing, a disk that filled up, a copy cut short or a file edited
later all leave a table that is not what process-fov wrote; such a FOV is processed again
by its worker and by ``--resume``, and the merge names it instead of merging it.

Every output also proves which FOV it is: the record (and the table's attributes, see
``IDENTITY_ATTRS``) carry the run id, the FOV's name and its index in the run. An output copied
into another FOV's slot, or from another run, is refused by the merge, ``status`` and
``--resume`` alike, in one line naming the slot and what it holds, and is processed again.
In S3 the record also gives the object's ETag as written (``nc_etag``), which the listing
returns for free, so an object replaced later is noticed there as on disk.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from starfish_batch.core import storage
from starfish_batch.core.contract import FOVS_DIR
from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.core.manifest import Manifest
from starfish_batch.core.records import FovRecord

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


IDENTITY_ATTRS = ("starfish_batch_run_id", "starfish_batch_fov", "starfish_batch_fov_index")
"""Global attributes of a per-FOV netCDF file (process-fov writes them; the merge checks them):
run id, FOV name, FOV index in the run. File-level, so the table starfish opens, and the
merged table, are unchanged."""


def stamp(path, run_id: str, fov: str, index: int) -> None:
    """Write ``IDENTITY_ATTRS`` into the netCDF file at ``path`` (before its digest is taken)."""
    import netCDF4  # lazy: netCDF4 ~1.4 s

    with netCDF4.Dataset(str(path), "a") as ds:
        ds.setncatts(dict(zip(IDENTITY_ATTRS, (run_id, fov, int(index)), strict=True)))


def run_index(manifest: Manifest, fov: str) -> int:
    """The FOV's position among every FOV of the run: the same in the run's every manifest."""
    return manifest.fov_indices[fov]


def slot(manifest: Manifest, fov: str, suffix: str = ".json") -> str:
    return f"FOV {fov} (index {run_index(manifest, fov)}): slot {manifest.fov_url(fov, suffix)}"


def identity_mismatch(manifest: Manifest, fov: str, run_id, name, index) -> str | None:
    """What an output claiming (run_id, name, index) holds, when that is not this slot's FOV."""
    if run_id == manifest.run_id and name == fov and index == run_index(manifest, fov):
        return None
    return f"holds FOV {name!r} (index {index}) of run {run_id!r}"


def refusal(manifest: Manifest, fov: str, record: FovRecord) -> str | None:
    """``FOV <fov> (index <i>): slot <url> holds FOV '<name>' (index <j>) of run '<id>'`` when
    the record is not this slot's, else None."""
    why = identity_mismatch(manifest, fov, record.run_id, record.fov, record.index)
    return None if why is None else f"{slot(manifest, fov)} {why}"


REDONE = "not done: --resume processes it again"


def read_record(manifest: Manifest, fov: str, refused: dict[str, str] | None = None) -> FovRecord | None:
    """The FOV's record, or None when it is absent, unreadable, made by another recipe, or
    another FOV's (said in ``refused``, FOV -> one line, when given)."""
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
    if record.recipe_sha256 != manifest.recipe_sha256:
        return None
    why = refusal(manifest, fov, record)
    if why is not None:
        if refused is not None:
            refused[fov] = f"{why}; {REDONE}"
        return None
    return record


def whole(manifest: Manifest, fov: str, record: FovRecord, size: int | None, etag: str | None = None) -> bool:
    """The check of a done FOV: the size (from a listing) always; on disk the sha256 too; in S3
    the ETag the listing gives against the one the worker recorded (a record without one, from
    an older worker: the object is read back and hashed)."""
    if mismatch(record, size) is not None:
        return False
    url = manifest.fov_url(fov, ".nc")
    if storage.is_s3(url):
        if record.nc_etag and etag is not None:
            return etag == record.nc_etag
        try:
            return mismatch(record, size, storage.Digest.of_bytes(storage.read_bytes(url))) is None
        except StarfishBatchError:
            return False
    try:
        return mismatch(record, size, storage.Digest.of_file(storage.absolute(url))) is None
    except OSError:
        return False


def done_record(manifest: Manifest, fov: str) -> FovRecord | None:
    """This FOV's record when its table is whole for this recipe (a retry then has nothing to do)."""
    record = read_record(manifest, fov)
    if record is None:
        return None
    url = manifest.fov_url(fov, ".nc")
    size, etag = storage.size_and_etag(url)
    return record if whole(manifest, fov, record, size, etag) else None


def completed(manifest: Manifest, refused: dict[str, str] | None = None) -> set[str]:
    """The FOVs of the run whose table is whole: one listing, then the records of the FOVs it
    shows (and on disk their tables' digests) checked on a few threads. FOVs whose slot holds
    another FOV's output are not done, and said in ``refused`` (FOV -> one line) when given."""
    listed = storage.list_objects(storage.join(manifest.run_root, FOVS_DIR))
    keys = manifest.keys
    candidates = [fov for fov in manifest.run_fovs if f"{keys[fov]}.nc" in listed and f"{keys[fov]}.json" in listed]
    found: dict[str, str] = {}

    def check(fov: str) -> bool:
        record = read_record(manifest, fov, found)
        size, etag = listed[f"{keys[fov]}.nc"]
        return record is not None and whole(manifest, fov, record, size, etag)

    with ThreadPoolExecutor(max_workers=CHECK_THREADS, thread_name_prefix="check-fov") as pool:
        done = {fov for fov, ok in zip(candidates, pool.map(check, candidates), strict=True) if ok}
    if refused is not None:
        refused.update((fov, found[fov]) for fov in manifest.run_fovs if fov in found)
    return done
