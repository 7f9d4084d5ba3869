"""The merge's second thread (the CSV rows and the Parquet file of each block) and the count
the main thread makes of each block before handing it over."""

from __future__ import annotations

import queue
import threading

from starfish_batch.merge import spots


class BlockConsumer:
    """The second thread: per block, format and compress the CSV rows; blocks come back for reuse.

    The main thread has counted the block's spots (``count_block``) and left its string factors in
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


def count_block(acc, block, bool_names, cells=None, tissue=None) -> None:
    """Count a block's spots (and cells) into ``acc`` (and ``cells``); leaves the string
    factors for the CSV in ``block``."""
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
