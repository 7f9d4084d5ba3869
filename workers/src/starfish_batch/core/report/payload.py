"""The tissue payload's file and array encoding, shared by its writer (the merge's
``merge.tissue.TissueCollector``) and its readers (the page, the launcher, ``status``)."""

from __future__ import annotations

import base64

import numpy as np

TISSUE_NAME = "report_tissue.json"
"""Beside report.html: the payload, for the launcher and ``status`` to draw the same page."""


def b64(array: np.ndarray) -> str:
    """An array's bytes as base64 text (JSON carries it; the reader knows the dtype)."""
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def unb64(text: str, dtype) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=dtype)
