"""The per-FOV tables the merge reads, in manifest order, each proven whole and of this run
before a row of it is merged: fetched (S3) or hashed (disk) a few ahead, with its record."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from starfish_batch.core import fov_output, storage
from starfish_batch.core.contract import FOVS_DIR
from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.core.manifest import Manifest, fov_output_url
from starfish_batch.core.records import FovRecord

PREFETCH = 6
"""Per-FOV objects fetched ahead from S3 (each a few MB)."""


def find_missing(manifest: Manifest) -> list[str]:
    """FOVs of the run without ``fovs/<fov>.nc``, in manifest order (one listing, not N lookups)."""
    names = set(storage.list_names(storage.join(manifest.run_root, FOVS_DIR)))
    return [fov for fov in manifest.run_fovs if f"{manifest.keys[fov]}.nc" not in names]


def parse_record(data: bytes | None, source: str) -> FovRecord | None:
    """A FOV's record, or None when it is absent or unreadable."""
    if not data:
        return None
    try:
        return FovRecord.from_json(data, source)
    except StarfishBatchError:
        return None


def same_recipe(manifest: Manifest, fov: str, record: FovRecord | None) -> FovRecord | None:
    """The record, once it shows the FOV was made by this run's recipe: a run never mixes two."""
    if record is not None and record.recipe_sha256 != manifest.recipe_sha256:
        raise StarfishBatchError(
            f"FOV {fov}: {manifest.fov_url(fov, '.nc')} was made by another recipe (sha256 "
            f"{record.recipe_sha256[:12]}...), not this run's ({manifest.recipe_sha256[:12]}...): "
            "refusing to merge it; delete it and its .json, then resume the run"
        )
    return record


def sources(manifest: Manifest, fovs: list[str]
             ) -> Iterator[tuple[str, Path | bytes, FovRecord | None, storage.Digest]]:
    """(fov, local path or the object's bytes, its fovs/<fov>.json record or None, the size and
    sha256 of what was read), in order; a few FOVs are fetched (S3) or hashed (disk) ahead."""
    s3 = storage.is_s3(manifest.run_root)
    root = manifest.run_root if s3 else storage.absolute(manifest.run_root)  # resolved once

    def fetch(fov: str):
        nc_url = fov_output_url(root, manifest.keys[fov], ".nc")
        record_url = fov_output_url(root, manifest.keys[fov], ".json")
        try:
            record = storage.read_bytes(record_url)
        except StarfishBatchError:
            record = None
        if s3:
            data = storage.read_bytes(nc_url)
            return data, same_recipe(manifest, fov, parse_record(record, record_url)), storage.Digest.of_bytes(data)
        try:
            digest = storage.Digest.of_file(nc_url)
        except OSError as exc:
            raise StarfishBatchError(f"FOV {fov}: cannot read {nc_url}: {exc.strerror or exc}") from exc
        return Path(nc_url), same_recipe(manifest, fov, parse_record(record, record_url)), digest

    with ThreadPoolExecutor(max_workers=PREFETCH, thread_name_prefix="prefetch") as pool:
        pending = []
        it = iter(fovs)
        try:
            for fov in it:
                pending.append((fov, pool.submit(fetch, fov)))
                if len(pending) >= PREFETCH:
                    break
            while pending:
                fov, future = pending.pop(0)
                source, record, digest = future.result()
                nxt = next(it, None)
                if nxt is not None:
                    pending.append((nxt, pool.submit(fetch, nxt)))
                yield fov, source, record, digest
        finally:
            for _, future in pending:
                future.cancel()


def check_whole(manifest: Manifest, fov: str, record: FovRecord | None, digest: storage.Digest) -> None:
    """The table read is the one its worker wrote, for this FOV of this run, or one line
    naming the FOV and the file."""
    label = manifest.fov_url(fov, ".nc")
    if record is None:
        raise StarfishBatchError(
            f"FOV {fov}: {label} is not proven whole: its record {manifest.fov_url(fov, '.json')} "
            f"is missing or unreadable; process the FOV again (--resume)")
    refused = fov_output.refusal(manifest, fov, record)
    if refused is not None:
        raise StarfishBatchError(f"{refused}: refusing to merge it; process the FOV again (--resume)")
    why = fov_output.mismatch(record, digest.size, digest)
    if why is not None:
        raise StarfishBatchError(f"FOV {fov}: {label} is corrupt ({why}); process the FOV again (--resume)")


def check_table_identity(manifest: Manifest, fov: str, h5) -> None:
    """The file's own run id, FOV name and index (``fov_output.IDENTITY_ATTRS``) match its
    slot; a table from before they were written has none and is vouched for by its record."""
    values = [h5.file_attr(name) for name in fov_output.IDENTITY_ATTRS]
    if all(v is None for v in values):
        return
    run_id, name, index = (_scalar(v) for v in values)
    why = fov_output.identity_mismatch(manifest, fov, run_id, name, index)
    if why is not None:
        raise StarfishBatchError(f"{fov_output.slot(manifest, fov, '.nc')} {why}: refusing to merge it; "
                                 "process the FOV again (--resume)")


def _scalar(value):
    """An HDF5 attribute read raw (array of bytes, str or int) as one Python value."""
    if value is None:
        return None
    item = value.reshape(-1)[0] if getattr(value, "size", 1) else None
    if isinstance(item, bytes):
        return item.decode("utf-8", "replace")
    return item.item() if hasattr(item, "item") else item


@contextlib.contextmanager
def reading(fov: str, label: str):
    """Errors of the HDF5 library on a per-FOV file, as one line naming the FOV and the file."""
    try:
        yield
    except StarfishBatchError as exc:
        if str(exc).startswith(f"FOV {fov}"):
            raise
        raise StarfishBatchError(f"FOV {fov}: {exc}") from exc
    except Exception as exc:
        from starfish_batch.merge.schema import SchemaChange  # lazy: merge.schema pulls numpy into merge start-up

        if isinstance(exc, SchemaChange):
            raise
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StarfishBatchError(f"FOV {fov}: {label} is corrupt ({detail})") from exc
