"""The merge: every FOV's table of a run into one ``merged_decoded_fovs.nc`` and its companions.

In one streaming pass over ``<run_root>/fovs/<fov>.nc`` (manifest order) it writes, under
the run root:

- ``merged_decoded_fovs.nc``: the tables concatenated along ``features``, readable with
  ``starfish.DecodedIntensityTable.open_netcdf`` and equal to starfish's own concatenation
  (see ``schema`` for what that means with empty tables and differing coordinates);
- ``decoded_spots.csv.gz``: one row per feature (see ``spots``);
- ``transcripts.parquet``: the same rows for pandas/pyarrow/scverse (see ``parquet``), and
  ``cells.h5ad`` when the recipe assigned spots to cells (see ``cells``);
- ``summary.json`` and ``qc.png`` (see ``summary`` and ``plot``).

Memory stays bounded whatever the number of FOVs: files are read one at a time (from S3,
a few are fetched ahead on threads) into blocks of at most ``reader.BLOCK_FEATURES``
rows; the main thread reads, appends blocks to the netCDF file and counts spots while a
second thread formats and compresses the CSV rows (qc.png is drawn while it finishes).
Every output is written to a local temporary file and published whole at the end (the
merged table last); a failed merge publishes nothing and deletes nothing.
"""

from __future__ import annotations

import sys
import tempfile
import time

from starfish_batch.core import storage
from starfish_batch.core.contract import MERGE as PROG
from starfish_batch.core.errors import StarfishBatchError, StorageError
from starfish_batch.core.manifest import Manifest, load_layout
from starfish_batch.merge.result import MergeResult, write_report
from starfish_batch.merge.sources import find_missing, reading, sources

MAX_SCHEMA_RESTARTS = 8


def _listing(items: list[str], limit: int = 20) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _merge_pass(manifest: Manifest, present: list[str], missing: list[str], schema, started: float,
                notes: list[str], overlap=None) -> MergeResult:
    from starfish_batch.merge.merge_pass import MergePass  # lazy: pulls numpy into merge start-up
    from starfish_batch.merge.overlap import OverlapFilter  # lazy: pulls numpy into merge start-up

    overlap = overlap if overlap is not None else OverlapFilter.for_run(None, None)
    _prepare_overlap(manifest, present, overlap)
    return MergePass(manifest, present, missing, schema, started, notes, overlap).run()


def _prepare_overlap(manifest: Manifest, present: list[str], overlap) -> None:
    """take-max counts each pair's overlap before the pass: one read of every ``xc``/``yc``."""
    from starfish_batch.core.layout import TAKE_MAX  # lazy: pulls numpy into merge start-up
    from starfish_batch.merge.layout_pass import tables_for  # lazy: pulls numpy into merge start-up

    if overlap.active and overlap.decision.rule == TAKE_MAX:
        overlap.prepare(tables_for(manifest, present, sources, reading))


def merge_run(manifest: Manifest, allow_partial: bool = False, overlap: str | None = None) -> MergeResult:
    """Merge every FOV output of the run; raises StarfishBatchError (one line) on failure.

    ``overlap`` overrides the run's ``--overlap`` rule (the per-FOV outputs are unchanged)."""
    from starfish_batch.merge.overlap import OverlapFilter  # lazy: pulls numpy into merge start-up
    from starfish_batch.merge.schema import SchemaChange  # lazy: pulls numpy into merge start-up

    started = time.perf_counter()
    fovs = manifest.run_fovs
    if not fovs:
        raise StarfishBatchError(f"manifest of run {manifest.run_id} lists no FOV")
    missing = find_missing(manifest)
    if missing and not allow_partial:
        raise StarfishBatchError(
            f"{len(missing)} of {len(fovs)} FOVs have no output under "
            f"{storage.join(manifest.run_root, 'fovs')}: {_listing(missing)} "
            f"(merge the others with --allow-partial)"
        )
    present = [fov for fov in fovs if fov not in set(missing)]
    if not present:
        raise StarfishBatchError(
            f"none of the {len(fovs)} FOVs has an output under "
            f"{storage.join(manifest.run_root, 'fovs')}"
        )
    if missing:
        print(f"{PROG}: {len(missing)} of {len(fovs)} FOVs missing, merging the "
              f"{len(present)} others; missing: {_listing(missing)}", file=sys.stderr)
    schema = None
    notes: list[str] = []
    if manifest.subset_of:  # --fovs: said in summary.json and the report, not only on the terminal
        notes.append(f"a partial run: {len(fovs)} of the experiment's {manifest.subset_of} FOVs (--fovs)")
    layout = load_layout(manifest)
    if layout is not None and missing:  # a missing FOV owns nothing: its neighbours keep their copies
        layout = type(layout).build([f for f in layout.fovs if f not in set(missing)], layout.extents,
                                    layout.pixel_size)
    for _ in range(MAX_SCHEMA_RESTARTS):
        try:
            result = _merge_pass(manifest, present, missing, schema, started, notes,
                                 OverlapFilter.for_run(overlap or manifest.overlap, layout))
            write_report(manifest, result)
            return result
        except StarfishBatchError:
            raise
        except SchemaChange as change:
            schema = change.schema
            notes.append(change.reason)
            print(f"{PROG}: {change.reason}: merging again with that coordinate kept "
                  f"(filled where absent)", file=sys.stderr)
        except Exception as exc:  # HDF5, the CSV or qc.png on a full disk: one line
            if storage.no_space_left(exc):
                where = tempfile.gettempdir() if storage.is_s3(manifest.run_root) else manifest.run_root
                raise StorageError(f"cannot write the merge's outputs in {where}: "
                                   "no space left on device") from exc
            raise
    raise StarfishBatchError(f"the FOV tables differ too much to merge: {'; '.join(notes)}")
