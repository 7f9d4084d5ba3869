"""The merge-batch-job worker: every FOV's table into one ``merged_decoded_fovs.nc``.

    merge-batch-job [--manifest-url URL] [--allow-partial]

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

import argparse
import contextlib
import dataclasses
import os
import queue
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from starfish_batch import fov_output, signals, storage
from starfish_batch.contract import (
    CELLS_NAME,
    FOVS_DIR,
    MANIFEST_SHA256_VAR,
    MANIFEST_URL_VAR,
    MERGE,
    MERGED_NAME,
    QC_NAME,
    SPATIALDATA_NAME,
    SPOTS_NAME,
    SUMMARY_NAME,
    TRANSCRIPTS_NAME,
)
from starfish_batch.errors import StarfishBatchError, StorageError
from starfish_batch.manifest import Manifest, fov_output_url
from starfish_batch.merge.publish import OutputSet
from starfish_batch.records import FovRecord

PROG = MERGE
PREFETCH = 6
"""Per-FOV objects fetched ahead from S3 (each a few MB)."""
MAX_SCHEMA_RESTARTS = 8


@dataclasses.dataclass
class MergeResult:
    merged_url: str
    n_fovs: int
    """FOVs merged (present), empty ones included."""
    n_features: int
    n_spots: int
    missing: list[str]
    outputs: dict[str, str]
    seconds: float
    notes: list[str] = dataclasses.field(default_factory=list)
    summary: object = None  # records.Summary, for report.html
    records: dict = dataclasses.field(default_factory=dict)  # fov -> FovRecord
    tissue: dict | None = None  # report.html's tissue, cells and decoding QC (merge/tissue.py)


def _listing(items: list[str], limit: int = 20) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def find_missing(manifest: Manifest) -> list[str]:
    """FOVs of the run without ``fovs/<fov>.nc``, in manifest order (one listing, not N lookups)."""
    names = set(storage.list_names(storage.join(manifest.run_root, FOVS_DIR)))
    return [fov for fov in manifest.run_fovs if f"{manifest.keys[fov]}.nc" not in names]


def _parse_record(data: bytes | None, source: str) -> FovRecord | None:
    """A FOV's record, or None when it is absent or unreadable."""
    if not data:
        return None
    try:
        return FovRecord.from_json(data, source)
    except StarfishBatchError:
        return None


def _same_recipe(manifest: Manifest, fov: str, record: FovRecord | None) -> FovRecord | None:
    """The record, once it shows the FOV was made by this run's recipe: a run never mixes two."""
    if record is not None and record.recipe_sha256 != manifest.recipe_sha256:
        raise StarfishBatchError(
            f"FOV {fov}: {manifest.fov_url(fov, '.nc')} was made by another recipe (sha256 "
            f"{record.recipe_sha256[:12]}...), not this run's ({manifest.recipe_sha256[:12]}...): "
            "refusing to merge it; delete it and its .json, then resume the run"
        )
    return record


def _sources(manifest: Manifest, fovs: list[str]
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
            return data, _same_recipe(manifest, fov, _parse_record(record, record_url)), storage.Digest.of_bytes(data)
        try:
            digest = storage.Digest.of_file(nc_url)
        except OSError as exc:
            raise StarfishBatchError(f"FOV {fov}: cannot read {nc_url}: {exc.strerror or exc}") from exc
        return Path(nc_url), _same_recipe(manifest, fov, _parse_record(record, record_url)), digest

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


def _check_whole(manifest: Manifest, fov: str, record: FovRecord | None, digest: storage.Digest) -> None:
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


def _check_table_identity(manifest: Manifest, fov: str, h5) -> None:
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
def _reading(fov: str, label: str):
    """Errors of the HDF5 library on a per-FOV file, as one line naming the FOV and the file."""
    try:
        yield
    except StarfishBatchError as exc:
        if str(exc).startswith(f"FOV {fov}"):
            raise
        raise StarfishBatchError(f"FOV {fov}: {exc}") from exc
    except Exception as exc:
        from starfish_batch.merge.schema import SchemaChange

        if isinstance(exc, SchemaChange):
            raise
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StarfishBatchError(f"FOV {fov}: {label} is corrupt ({detail})") from exc


class _Consumer:
    """The second thread: per block, format and compress the CSV rows; blocks come back for reuse.

    The main thread has counted the block's spots (``_count``) and left its string factors in
    ``block.factors``: the summary is complete as soon as the last block is read, so qc.png is
    drawn while this thread finishes the CSV.
    """

    def __init__(self, csv_writer, bool_names, sinks=()):
        self.csv = csv_writer
        self.bool_names = bool_names
        self.sinks = list(sinks)
        """More writers of each block (``write_block(arrays, data, factors)``): transcripts.parquet."""
        self.todo: queue.Queue = queue.Queue(maxsize=1)
        self.free: queue.Queue = queue.Queue()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="merge-csv", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from starfish_batch.merge import spots

        while True:
            block = self.todo.get()
            if block is None:
                return
            try:
                if self.error is None:
                    arrays = block.view()
                    data = arrays.pop(block.data_name)
                    self.csv.write_block(
                        spots.block_columns(arrays, data, block.factors, self.bool_names, self.csv.columns)
                    )
                    for sink in self.sinks:
                        sink.write_block(arrays, data, block.factors)
            except BaseException as exc:  # reported to the main thread
                self.error = exc
            finally:
                block.clear()
                block.factors = None
                self.free.put(block)

    def submit(self, block) -> None:
        self.check()
        self.todo.put(block)

    def take_free(self):
        block = self.free.get()
        self.check()
        return block

    def finish(self) -> None:
        self.todo.put(None)
        self.thread.join()
        self.check()

    def abandon(self) -> None:
        if self.thread.is_alive():
            self.error = self.error or RuntimeError("abandoned")
            self.todo.put(None)
            self.thread.join()

    def check(self) -> None:
        if self.error is not None:
            raise self.error


def _count(acc, block, bool_names, cells=None, tissue=None) -> None:
    """Count a block's spots (and cells) into ``acc`` (and ``cells``); leaves the string
    factors for the CSV in ``block``."""
    from starfish_batch.merge import spots

    arrays = block.view()
    data = arrays.pop(block.data_name)
    factors = {name: block.factor(name) for name in ("fov", "target", "cell_id")
               if name in block.strings}
    if "fov" not in factors:  # a table without fov names, or with numbers
        fov = arrays["fov"] if "fov" in arrays else spots.piece_labels(block.fov_slices, block.size)
        factors["fov"] = spots.factorize(fov)
    for name in ("target", "cell_id"):
        if name not in factors and name in arrays:
            factors[name] = spots.factorize(arrays[name])
    decoded = acc.add_block(arrays, block.fov_slices, factors.get("target"), bool_names)
    if cells is not None:
        cells.add_block(arrays, factors, decoded, block.fov_slices[-1][0] if block.fov_slices else None)
    if tissue is not None:
        tissue.add_block(arrays, data, factors, decoded)
    block.factors = factors


def _merge_pass(manifest: Manifest, present: list[str], missing: list[str], schema, started: float,
                notes: list[str], overlap=None) -> MergeResult:
    from starfish_batch.merge import spatial, spots
    from starfish_batch.merge.cells import CellCounter
    from starfish_batch.merge.columns import present as present_columns
    from starfish_batch.merge.overlap import OverlapFilter, compact
    from starfish_batch.merge.parquet import TranscriptsParquetWriter
    from starfish_batch.merge.plot import render_qc_png
    from starfish_batch.merge.reader import Block, FovReader
    from starfish_batch.merge.schema import Schema
    from starfish_batch.merge.summary import SummaryAccumulator, write_summary
    from starfish_batch.merge.tissue import TissueCollector
    from starfish_batch.merge.writer import MergedWriter

    root = manifest.run_root
    outputs = {
        "merged": storage.join(root, MERGED_NAME),
        "spots": storage.join(root, SPOTS_NAME),
        "transcripts": storage.join(root, TRANSCRIPTS_NAME),
        "summary": storage.join(root, SUMMARY_NAME),
        "qc": storage.join(root, QC_NAME),
    }
    reader = FovReader()
    acc = SummaryAccumulator(manifest.run_fovs)
    cells = CellCounter()
    tissue = TissueCollector()
    first_empty = None
    writer = None
    consumer = None
    block = None
    total = 0
    overlap = overlap if overlap is not None else OverlapFilter.for_run(None, None)
    _prepare_overlap(manifest, present, overlap)

    with contextlib.ExitStack() as stack:
        # one set: published together at the end, the merged table last (merge/publish.py)
        staged = stack.enter_context(OutputSet(root, outputs, ["summary", "qc", "transcripts", "spots", "merged"]))
        nc_path, csv_path, parquet_path, qc_path, summary_path = (
            staged.paths[key] for key in ("merged", "spots", "transcripts", "qc", "summary"))
        csv_file = stack.enter_context(open(csv_path, "wb", buffering=1 << 20))
        csv_writer = None

        def start_writer(s):
            nonlocal writer, consumer, block, csv_writer
            # the CSV's columns are the Parquet file's: one vocabulary (merge/columns.py)
            csv_writer = spots.SpotsCsvWriter(csv_file, columns=present_columns(s.coords))
            writer = MergedWriter(nc_path, s)
            stack.callback(writer.abort)  # a no-op once closed; see MergedWriter.abort
            bool_names = frozenset(n for n, v in s.coords.items() if v.attrs.get("dtype") == "bool")
            parquet = TranscriptsParquetWriter(parquet_path, s, bool_names)
            stack.callback(parquet.close)
            consumer = _Consumer(csv_writer, bool_names, [parquet])
            stack.callback(consumer.abandon)
            consumer.free.put(Block(s))
            block = Block(s)

        def flush():
            nonlocal block
            if block.size:
                writer.append(block)
                _count(acc, block, consumer.bool_names, cells, tissue)
                consumer.submit(block)
                block = consumer.take_free()

        for fov, source, record, digest in _sources(manifest, present):
            label = manifest.fov_url(fov, ".nc")
            _check_whole(manifest, fov, record, digest)
            with _reading(fov, label):
                h5 = reader.open(source, label)
            try:
                with _reading(fov, label):
                    layout = reader.layout(h5, source, label)
                    n = reader.n_features(layout, h5)
                    _check_table_identity(manifest, fov, h5)
                    keep = overlap.keep(fov, h5, n)  # None: every row (no overlap)
                acc.add_fov(fov, n if keep is None else int(keep.sum()), record)
                if n == 0:
                    if first_empty is None:
                        first_empty = (layout, fov)
                    continue
                if schema is None:
                    schema = Schema.from_layout(layout, fov)
                if writer is None:
                    start_writer(schema)
                with _reading(fov, label):
                    how = reader.plan(schema, layout, fov)
                    reader.check_static(schema, layout, h5, fov)
                start = 0
                while start < n:
                    if not block.room:
                        flush()
                    k = min(block.room, n - start)
                    at = block.size
                    block.fov_slices.append((fov, at, at + k))
                    with _reading(fov, label):
                        reader.read_into(block, schema, layout, how, h5, start, start + k)
                    if keep is not None:  # a neighbour's transcripts: dropped as they arrive
                        compact(block, at, keep[start: start + k])
                    start += k
                total += n if keep is None else int(keep.sum())
            finally:
                h5.close()

        if writer is None:  # no FOV has a feature: a valid 0-feature table
            if first_empty is None:
                raise StarfishBatchError("no FOV output to merge")
            schema = Schema.from_layout(*first_empty)
            start_writer(schema)
        flush()
        writer.close()
        # every block is counted: qc.png is drawn while the CSV thread finishes the last ones
        seconds = time.perf_counter() - started
        no_cells = cells.why_none()
        if no_cells is None:
            outputs["cells"] = storage.join(root, CELLS_NAME)
        if spatial.available():
            outputs["spatialdata"] = storage.join(root, SPATIALDATA_NAME)
        summary = acc.summary(run_id=manifest.run_id, missing=missing, merge_seconds=seconds,
                              n_features=total, outputs=relative_outputs(root, outputs),
                              notes=notes + ([no_cells] if no_cells else []))
        summary.overlap = overlap.report()
        summary.overlap["closing_line"] = overlap.closing_line()
        for fov, entry in summary.fovs.items():
            entry.update(overlap.entry(fov))
        render_qc_png(qc_path, summary, acc.sample, acc.coordinate_kind)
        tissue_data = _tissue_payload(tissue, summary, cells)
        consumer.finish()
        csv_writer.close()
        csv_file.close()
        for sink in consumer.sinks:
            sink.close()
        block = consumer.free = None  # the block buffers, freed before AnnData is imported
        cells_path = None
        if no_cells is None:
            cells_path = staged.add("cells", outputs["cells"])
            cells.write_h5ad(cells_path)
        if "spatialdata" in outputs:  # a directory: published whole, before the set it belongs beside
            with storage.staged_tree(outputs["spatialdata"]) as tree:
                spatial.write_spatialdata(tree, parquet_path, cells_path)
        summary.timings["merge_seconds"] = round(time.perf_counter() - started, 3)
        write_summary(summary_path, summary)
        staged.publish()
    return MergeResult(
        merged_url=outputs["merged"], n_fovs=len(present), n_features=total,
        n_spots=summary.n_spots, missing=missing, outputs=outputs,
        seconds=time.perf_counter() - started, notes=notes, summary=summary, records=acc.records,
        tissue=tissue_data,
    )


def _tissue_payload(tissue, summary, cells) -> dict | None:
    """report.html's tissue data; a failure here is a page without a tissue, never a failed merge."""
    from starfish_batch.report.model import extent_of

    try:
        extents = {fov: extent_of(entry) for fov, entry in summary.fovs.items()}
        return tissue.payload(extents, cells if cells.why_none() is None else None)
    except Exception as exc:  # noqa: BLE001
        print(f"{PROG}: warning: the report's tissue map not collected: {type(exc).__name__}: {exc}",
              file=sys.stderr)
        return None


def relative_outputs(root: str, outputs: dict[str, str]) -> dict[str, str]:
    """The outputs as summary.json and the report keep them: relative to the run folder, so a
    folder moved or shared keeps working."""
    from starfish_batch.manifest import relative_to_run

    return {key: relative_to_run(root, url) for key, url in outputs.items()}


def _prepare_overlap(manifest: Manifest, present: list[str], overlap) -> None:
    """take-max counts each pair's overlap before the pass: one read of every ``xc``/``yc``."""
    from starfish_batch.layout import TAKE_MAX
    from starfish_batch.merge.layout_pass import tables_for

    if overlap.active and overlap.decision.rule == TAKE_MAX:
        overlap.prepare(tables_for(manifest, present, _sources, _reading))


def _write_report(manifest: Manifest, result: MergeResult) -> None:
    """report.html from what the merge has in hand; a page that cannot be written is a warning,
    never a failed merge (the launcher writes it again at the end of the run)."""
    from starfish_batch import run_report

    try:
        report = run_report.collect(
            manifest, summary=dataclasses.asdict(result.summary),
            records={fov: dataclasses.asdict(r) for fov, r in result.records.items()},
            state="partial" if result.missing else "merged", source=PROG,
            tissue=result.tissue or {})
        run_report.write_tissue(manifest, result.tissue or {})  # {}: none, never an older merge's
        result.outputs["report"] = run_report.write(manifest, report)
    except Exception as exc:  # noqa: BLE001 - the merged outputs are already published
        print(f"{PROG}: warning: report.html not written: {type(exc).__name__}: {exc}", file=sys.stderr)


def merge_run(manifest: Manifest, allow_partial: bool = False, overlap: str | None = None) -> MergeResult:
    """Merge every FOV output of the run; raises StarfishBatchError (one line) on failure.

    ``overlap`` overrides the run's ``--overlap`` rule (the per-FOV outputs are unchanged)."""
    from starfish_batch.manifest import load_layout
    from starfish_batch.merge.overlap import OverlapFilter
    from starfish_batch.merge.schema import SchemaChange

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
            _write_report(manifest, result)
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


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--manifest-url", help="the run's manifest.json (default: $RUN_MANIFEST_URL)")
    p.add_argument("--allow-partial", action="store_true",
                   help="merge the FOVs that have an output and list the others as missing "
                   "(also: MERGE_ALLOW_PARTIAL=1)")
    p.add_argument("--overlap", choices=("nearest", "keep-all", "take-max"),
                   help="merge again under another rule than the run's (see the launcher's --overlap)")
    return p


def _exit_if_abandoned(code: int) -> int:
    """End now when HDF5 could not close the merged file (a full disk): the interpreter's
    clean-up would make HDF5 crash (exit 139) after the error line; see ``MergedWriter.abort``."""
    from starfish_batch.merge import writer

    if writer.abandoned():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    args = _parser().parse_args(argv)
    signals.sigterm_exits()
    try:
        url = args.manifest_url or env.get(MANIFEST_URL_VAR)
        if not url:
            raise StarfishBatchError("no manifest: set RUN_MANIFEST_URL or pass --manifest-url")
        allow_partial = args.allow_partial or env.get("MERGE_ALLOW_PARTIAL", "").lower() in (
            "1", "true", "yes")
        manifest = Manifest.load(storage.absolute(url), env.get(MANIFEST_SHA256_VAR))
        result = merge_run(manifest, allow_partial=allow_partial, overlap=args.overlap)
    except StarfishBatchError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return _exit_if_abandoned(1)
    except Exception as exc:
        traceback.print_exc()
        print(f"{PROG}: unexpected error: {type(exc).__name__}: {exc}".splitlines()[0],
              file=sys.stderr)
        return _exit_if_abandoned(1)
    partial = f" ({len(result.missing)} missing)" if result.missing else ""
    print(f"{PROG}: merged {result.n_fovs} FOVs{partial}: {result.n_features} features, "
          f"{result.n_spots} decoded spots in {result.seconds:.1f} s -> {result.merged_url}",
          file=sys.stderr)
    print(f"{PROG}: {result.summary.overlap['closing_line']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
