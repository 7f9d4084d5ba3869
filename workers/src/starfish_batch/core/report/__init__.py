"""``report.html``: the run's page for a scientist (see :mod:`.page`), from plain data (:mod:`.model`).

Pure rendering: no file, network, AWS or starfish here. The merge and the launcher collect the
data (``starfish_batch.core.report.collect``) and write the page beside the run's outputs.
"""

from starfish_batch.core.report.model import (
    DONE,
    EMPTY,
    FAILED,
    MISSING,
    STATUSES,
    FailureRow,
    FovRow,
    RunReport,
    extent_of,
    fov_rows,
)
from starfish_batch.core.report.page import render_html
from starfish_batch.core.report.svg import MAX_MARKS

__all__ = ["DONE", "EMPTY", "FAILED", "MISSING", "MAX_MARKS", "STATUSES", "FailureRow", "FovRow",
           "RunReport", "extent_of", "fov_rows", "render_html"]
