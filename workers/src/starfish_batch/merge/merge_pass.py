"""One streaming pass of the merge over the present FOVs' tables: every block of rows is
appended to the merged netCDF file and counted on the main thread, then formatted into the
CSV and the Parquet file on a second one; the outputs are staged and published as one set."""

from __future__ import annotations

import contextlib
import time

from starfish_batch.core import storage
from starfish_batch.core.contract import (
    CELLS_NAME,
    MERGED_NAME,
    QC_NAME,
    SPATIALDATA_NAME,
    SPOTS_NAME,
    SUMMARY_NAME,
    TRANSCRIPTS_NAME,
)
from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.core.manifest import Manifest
from starfish_batch.merge import spatial, spots
from starfish_batch.merge.cells import CellCounter
from starfish_batch.merge.columns import present as present_columns
from starfish_batch.merge.consumer import BlockConsumer, count_block
from starfish_batch.merge.overlap import compact
from starfish_batch.merge.parquet import TranscriptsParquetWriter
from starfish_batch.merge.plot import render_qc_png
from starfish_batch.merge.publish import OutputSet
from starfish_batch.merge.reader import Block, FovReader
from starfish_batch.merge.result import MergeResult, relative_outputs, tissue_payload
from starfish_batch.merge.schema import Schema
from starfish_batch.merge.sources import check_table_identity, check_whole, reading, sources
from starfish_batch.merge.summary import SummaryAccumulator, write_summary
from starfish_batch.merge.tissue import TissueCollector
from starfish_batch.merge.writer import MergedWriter

PUBLISH_ORDER = ("summary", "qc", "transcripts", "spots", "merged")
"""The staged outputs, published together at the end, the merged table last (merge/publish.py);
a tuple: each pass gives OutputSet a list of its own, which ``add`` extends."""


class MergePass:
    """The state of one pass: the accumulators, and the writers made at the first FOV with a
    feature (the schema is that FOV's unless a restart after a ``SchemaChange`` gave one)."""

    def __init__(self, manifest: Manifest, present: list[str], missing: list[str], schema, started: float,
                 notes: list[str], overlap) -> None:
        self.manifest, self.present, self.missing = manifest, present, missing
        self.schema, self.started, self.notes, self.overlap = schema, started, notes, overlap
        root = manifest.run_root
        self.outputs = {key: storage.join(root, name) for key, name in (
            ("merged", MERGED_NAME), ("spots", SPOTS_NAME), ("transcripts", TRANSCRIPTS_NAME),
            ("summary", SUMMARY_NAME), ("qc", QC_NAME))}
        self.reader = FovReader()
        self.acc = SummaryAccumulator(manifest.run_fovs)
        self.cells = CellCounter()
        self.tissue = TissueCollector()
        self.first_empty = None
        self.writer = self.consumer = self.block = self.csv_writer = None
        self.total = 0

    def run(self) -> MergeResult:
        with contextlib.ExitStack() as stack:
            self.stack = stack
            self.staged = stack.enter_context(OutputSet(self.manifest.run_root, self.outputs, list(PUBLISH_ORDER)))
            self.csv_file = stack.enter_context(open(self.staged.paths["spots"], "wb", buffering=1 << 20))
            for fov, source, record, digest in sources(self.manifest, self.present):
                self._add_fov(fov, source, record, digest)
            if self.writer is None:  # no FOV has a feature: a valid 0-feature table
                if self.first_empty is None:
                    raise StarfishBatchError("no FOV output to merge")

                self.schema = Schema.from_layout(*self.first_empty)
                self._start_writer(self.schema)
            self._flush()
            self.writer.close()
            summary, tissue_data = self._finish()
        return MergeResult(
            merged_url=self.outputs["merged"], n_fovs=len(self.present), n_features=self.total,
            n_spots=summary.n_spots, missing=self.missing, outputs=self.outputs,
            seconds=time.perf_counter() - self.started, notes=self.notes, summary=summary,
            records=self.acc.records, tissue=tissue_data,
        )

    def _start_writer(self, schema) -> None:
        # the CSV's columns are the Parquet file's: one vocabulary (merge/columns.py)
        self.csv_writer = spots.SpotsCsvWriter(self.csv_file, columns=present_columns(schema.coords))
        self.writer = MergedWriter(self.staged.paths["merged"], schema)
        self.stack.callback(self.writer.abort)  # a no-op once closed; see MergedWriter.abort
        bool_names = frozenset(n for n, v in schema.coords.items() if v.attrs.get("dtype") == "bool")
        parquet = TranscriptsParquetWriter(self.staged.paths["transcripts"], schema, bool_names)
        self.stack.callback(parquet.close)
        self.consumer = BlockConsumer(self.csv_writer, bool_names, [parquet])
        self.stack.callback(self.consumer.abandon)
        self.consumer.free.put(Block(schema))
        self.block = Block(schema)

    def _flush(self) -> None:
        if self.block.size:
            self.writer.append(self.block)
            count_block(self.acc, self.block, self.consumer.bool_names, self.cells, self.tissue)
            self.consumer.submit(self.block)
            self.block = self.consumer.take_free()

    def _add_fov(self, fov: str, source, record, digest) -> None:
        """One FOV's table, proven whole, its rows (those it owns, where FOVs overlap) appended."""
        label = self.manifest.fov_url(fov, ".nc")
        check_whole(self.manifest, fov, record, digest)
        with reading(fov, label):
            h5 = self.reader.open(source, label)
        try:
            with reading(fov, label):
                layout = self.reader.layout(h5, source, label)
                n = self.reader.n_features(layout, h5)
                check_table_identity(self.manifest, fov, h5)
                keep = self.overlap.keep(fov, h5, n)  # None: every row (no overlap)
            self.acc.add_fov(fov, n if keep is None else int(keep.sum()), record)
            if n == 0:
                if self.first_empty is None:
                    self.first_empty = (layout, fov)
                return
            if self.schema is None:
                self.schema = Schema.from_layout(layout, fov)
            if self.writer is None:
                self._start_writer(self.schema)
            self._read_rows(fov, label, h5, layout, n, keep)
            self.total += n if keep is None else int(keep.sum())
        finally:
            h5.close()

    def _read_rows(self, fov: str, label: str, h5, layout, n: int, keep) -> None:
        """Rows 0..n of the table into blocks, a full block flushed before the next is filled."""
        with reading(fov, label):
            how = self.reader.plan(self.schema, layout, fov)
            self.reader.check_static(self.schema, layout, h5, fov)
        start = 0
        while start < n:
            if not self.block.room:
                self._flush()
            k = min(self.block.room, n - start)
            at = self.block.size
            self.block.fov_slices.append((fov, at, at + k))
            with reading(fov, label):
                self.reader.read_into(self.block, self.schema, layout, how, h5, start, start + k)
            if keep is not None:  # a neighbour's transcripts: dropped as they arrive
                compact(self.block, at, keep[start: start + k])
            start += k

    def _finish(self):
        """(summary, report.html's tissue data) once every block is counted: qc.png drawn while the
        CSV thread finishes the last ones, then cells.h5ad, SpatialData and summary.json; published."""
        root, paths = self.manifest.run_root, self.staged.paths
        no_cells = self.cells.why_none()
        if no_cells is None:
            self.outputs["cells"] = storage.join(root, CELLS_NAME)
        if spatial.available():
            self.outputs["spatialdata"] = storage.join(root, SPATIALDATA_NAME)
        summary = self._summary(no_cells)
        render_qc_png(paths["qc"], summary, self.acc.sample, self.acc.coordinate_kind)
        tissue_data = tissue_payload(self.tissue, summary, self.cells)
        self.consumer.finish()
        self.csv_writer.close()
        self.csv_file.close()
        for sink in self.consumer.sinks:
            sink.close()
        self.block = self.consumer.free = None  # the block buffers, freed before AnnData is imported
        cells_path = None
        if no_cells is None:
            cells_path = self.staged.add("cells", self.outputs["cells"])
            self.cells.write_h5ad(cells_path)
        if "spatialdata" in self.outputs:  # a directory: published whole, before the set it belongs beside
            with storage.staged_tree(self.outputs["spatialdata"]) as tree:
                spatial.write_spatialdata(tree, paths["transcripts"], cells_path)
        summary.timings["merge_seconds"] = round(time.perf_counter() - self.started, 3)
        write_summary(paths["summary"], summary)
        self.staged.publish()
        return summary, tissue_data

    def _summary(self, no_cells: str | None):
        """summary.json's content, the overlap's account included."""
        seconds = time.perf_counter() - self.started
        summary = self.acc.summary(run_id=self.manifest.run_id, missing=self.missing, merge_seconds=seconds,
                                   n_features=self.total, outputs=relative_outputs(self.manifest.run_root,
                                                                                   self.outputs),
                                   notes=self.notes + ([no_cells] if no_cells else []))
        summary.overlap = self.overlap.report()
        summary.overlap["closing_line"] = self.overlap.closing_line()
        for fov, entry in summary.fovs.items():
            entry.update(self.overlap.entry(fov))
        return summary
