"""Every name that crosses a process boundary, in one place.

The launcher, the two worker images and the Terraform module agree on these: the entry
points (the images' commands), the environment each worker is started with (by AWS Batch and
by the local executor alike), and the names of the files of a run folder
``<results-url>/<run-id>/``. ``docs/design.md`` describes the contract in words.
"""

from __future__ import annotations

# Entry points: the console scripts, and the job definitions' commands.
PROCESS_FOV = "process-fov"
MERGE = "merge-batch-job"
LAUNCHER = "starfish_workflow.py"

# The worker environment. Batch sets AWS_BATCH_JOB_ARRAY_INDEX (and AWS_BATCH_JOB_ID) itself.
MANIFEST_URL_VAR = "RUN_MANIFEST_URL"
MANIFEST_SHA256_VAR = "RUN_MANIFEST_SHA256"  # set at submission, so a manifest swapped later is refused
INDEX_OFFSET_VAR = "FOV_INDEX_OFFSET"
ARRAY_INDEX_VAR = "AWS_BATCH_JOB_ARRAY_INDEX"
JOB_ID_VAR = "AWS_BATCH_JOB_ID"
# Local executor only: the pipe a worker says its phase on ("recipe", "committed"), so the
# launcher can tell a recipe that ended the interpreter from a worker that finished.
PHASE_FD_VAR = "STARFISH_BATCH_PHASE_FD"

# The run folder.
MANIFEST_NAME = "manifest.json"
RECIPE_NAME = "recipe.py"
FOVS_DIR = "fovs"
FAILURES_DIR = "failures"  # failures/<key>.json: a FOV that failed inside a packed child's slice
QUOTE_NAME = "quote.json"  # written by `estimate`: a resume packs its children from it
LOGS_DIR = "logs"
MERGED_NAME = "merged_decoded_fovs.nc"
SPOTS_NAME = "decoded_spots.csv.gz"
TRANSCRIPTS_NAME = "transcripts.parquet"
CELLS_NAME = "cells.h5ad"
SPATIALDATA_NAME = "spatialdata.zarr"
SUMMARY_NAME = "summary.json"
QC_NAME = "qc.png"
JOBS_NAME = "jobs.json"
LOCK_NAME = "launcher.lock"  # held by the one launcher starting or resuming the run
LAYOUT_NAME = "fov_layout.json"  # the FOVs' stage extents, read at planning (layout.py)
REPORT_NAME = "report.html"  # written by the merge, then by the launcher with what only it knows
OUTPUT_NAMES = (MERGED_NAME, SPOTS_NAME, TRANSCRIPTS_NAME, SUMMARY_NAME, QC_NAME)
"""What every merge writes; ``CELLS_NAME`` too when the recipe assigned spots to cells, and
``SPATIALDATA_NAME`` (a directory) where the optional spatialdata package is installed."""

# How many lines of a failed worker's log the launcher shows, for how many failed FOVs.
LOG_TAIL_LINES = 20
MAX_LOG_TAILS = 5


def worker_env(manifest_url: str, manifest_sha256: str = "", index_offset: int = 0) -> dict[str, str]:
    """The variables both executors give every worker, beside Batch's own.

    The manifest's sha256 travels in the job itself (Batch's submitted environment cannot be
    edited afterwards), and the manifest holds the recipe's and the experiment's digests: a
    worker or a retry can only ever run what the launcher checked.
    """
    env = {MANIFEST_URL_VAR: manifest_url, INDEX_OFFSET_VAR: str(index_offset)}
    if manifest_sha256:
        env[MANIFEST_SHA256_VAR] = manifest_sha256
    return env
