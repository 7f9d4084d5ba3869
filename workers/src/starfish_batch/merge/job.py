"""The merge-batch-job worker's face: ``merge-batch-job`` and ``python -m starfish_batch.merge.job``
run ``main``; callers import ``merge_run`` and ``MergeResult`` from here.

Behind it: ``main`` (the entry point: flags, environment, exit code), ``pipeline`` (``merge_run``:
which FOVs, restarts on a schema change, a full disk in one line), ``merge_pass`` (one
streaming pass over the tables), ``sources`` (each table fetched ahead and proven whole),
``consumer`` (the CSV/Parquet thread) and ``result`` (what a merge returns and the report).
"""

from __future__ import annotations

import sys

from starfish_batch.core.contract import MERGE as PROG
from starfish_batch.merge.main import main
from starfish_batch.merge.pipeline import MAX_SCHEMA_RESTARTS, merge_run
from starfish_batch.merge.result import MergeResult, relative_outputs
from starfish_batch.merge.sources import PREFETCH, find_missing

__all__ = ["MAX_SCHEMA_RESTARTS", "PREFETCH", "PROG", "MergeResult", "find_missing", "main", "merge_run",
           "relative_outputs"]

if __name__ == "__main__":
    sys.exit(main())
