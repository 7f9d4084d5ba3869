"""Score decoded spots against a ground truth (the demo experiment's ``ground_truth.csv``).

A called spot is a true positive when it is matched, one to one and within
``max_distance_px`` pixels in the same FOV, to a true spot of the same target. Matching is
an optimal assignment (Hungarian, ``scipy.optimize.linear_sum_assignment``) per FOV and
target, minimising the total distance, so a call never steals the truth of a better one.

    from starfish_batch.launcher.score import score, spots_from_table
    called = spots_from_table(DecodedIntensityTable.open_netcdf("merged_decoded_fovs.nc"))
    print(score(called, "demo/ground_truth.csv"))
"""

from __future__ import annotations

import math
from os import PathLike

import numpy as np
import pandas as pd

CALLED_COLUMNS = ("fov", "target", "x", "y")
DEFAULT_MAX_DISTANCE_PX = 3.0


def _is_missing_target(values: pd.Series) -> pd.Series:
    text = values.astype(str).str.strip().str.lower()
    return values.isna() | text.isin(["nan", "none", ""])


def _truthy(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return False if pd.isna(value) else bool(value)  # nan is not a pass


def spots_from_table(table, fov: str | None = None) -> pd.DataFrame:
    """The called spots of a DecodedIntensityTable as a DataFrame ``fov, target, x, y``.

    ``x``/``y`` are the pixel coordinates (``x``/``y`` coordinates on ``features``).

    Features whose target is missing (nan/None) or whose ``passes_thresholds`` is False are
    left out. The FOV comes from the ``fov`` coordinate on ``features`` (as in per-FOV and
    merged tables of starfish-batch); a table without one (straight from a recipe) needs
    ``fov``.
    """
    n = int(table.sizes.get("features", 0))
    coords = table.coords
    if "fov" in coords:
        fovs = np.asarray(coords["fov"].values).astype(str)
    elif fov is not None:
        fovs = np.full(n, str(fov), dtype=object)
    else:
        raise ValueError("the table has no `fov` coordinate on features: pass fov=")
    if n == 0:
        return pd.DataFrame({c: pd.Series(dtype=float if c in "xy" else object)
                             for c in CALLED_COLUMNS})
    frame = pd.DataFrame({
        "fov": fovs,
        "target": np.asarray(coords["target"].values, dtype=object),
        "x": np.asarray(coords["x"].values, dtype=float),
        "y": np.asarray(coords["y"].values, dtype=float),
    })
    keep = ~_is_missing_target(frame["target"])
    if "passes_thresholds" in coords:
        keep &= np.asarray(coords["passes_thresholds"].values, dtype=bool)
    frame = frame[keep.to_numpy()].reset_index(drop=True)
    frame["target"] = frame["target"].astype(str)
    return frame


def _match(called: np.ndarray, truth: np.ndarray, max_distance: float) -> int:
    """How many one-to-one pairs within max_distance, minimising the total distance."""
    if len(called) == 0 or len(truth) == 0:
        return 0
    from scipy.optimize import linear_sum_assignment  # lazy: scipy ~0.6-1.4 s
    from scipy.spatial.distance import cdist  # lazy: scipy ~0.6-1.4 s

    distance = cdist(called, truth)
    # Pairs farther than the radius must never be chosen: give them a cost so high that
    # any assignment using them is worse than one leaving both spots unmatched.
    too_far = distance > max_distance
    big = 1e6 + distance.max()
    cost = np.where(too_far, big, distance)
    rows, cols = linear_sum_assignment(cost)
    return int(np.count_nonzero(~too_far[rows, cols]))


def _ratio(num: int, den: int) -> float:
    return num / den if den else math.nan


def _called_and_truth(
    decoded_spots: pd.DataFrame, ground_truth_csv: str | PathLike | pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both tables checked for their columns, the calls without a target or a pass left out,
    and ``fov``/``target`` as text in both (a FOV named 1 in one must match "1" in the other)."""
    if isinstance(ground_truth_csv, pd.DataFrame):
        truth = ground_truth_csv.copy()
    else:
        truth = pd.read_csv(ground_truth_csv, dtype={"fov": str, "target": str})
    called = pd.DataFrame(decoded_spots).copy()
    missing = [c for c in CALLED_COLUMNS if c not in called.columns]
    if missing:
        raise ValueError(f"decoded_spots lacks columns {missing}")
    missing = [c for c in CALLED_COLUMNS if c not in truth.columns]
    if missing:
        raise ValueError(f"ground truth lacks columns {missing}")
    keep = ~_is_missing_target(called["target"])
    if "passes_thresholds" in called.columns:
        keep &= called["passes_thresholds"].map(_truthy).astype(bool)
    called = called[keep]
    for frame in (called, truth):
        frame["fov"] = frame["fov"].astype(str)
        frame["target"] = frame["target"].astype(str)
    return called, truth


def _counts_per_pair(
    called: pd.DataFrame, truth: pd.DataFrame, max_distance_px: float
) -> dict[tuple[str, str], list[int]]:
    """``{(fov, target): [true positives, n_truth, n_called]}``: matching is per FOV and target."""
    per_pair: dict[tuple[str, str], list[int]] = {}
    truth_groups = dict(list(truth.groupby(["fov", "target"])))
    called_groups = dict(list(called.groupby(["fov", "target"])))
    keys = set(truth_groups) | set(called_groups)
    for key in keys:
        t = truth_groups.get(key)
        c = called_groups.get(key)
        t_xy = t[["x", "y"]].to_numpy(float) if t is not None else np.empty((0, 2))
        c_xy = c[["x", "y"]].to_numpy(float) if c is not None else np.empty((0, 2))
        per_pair[key] = [_match(c_xy, t_xy, max_distance_px), len(t_xy), len(c_xy)]
    return per_pair


def _summarise(per_pair: dict[tuple[str, str], list[int]], index: int) -> dict:
    """The counts summed per FOV (``index`` 0) or per target (1), with their recall and precision."""
    out: dict[str, list[int]] = {}
    for key, counts in per_pair.items():
        acc = out.setdefault(key[index], [0, 0, 0])
        for i in range(3):
            acc[i] += counts[i]
    return {
        name: {
            "true_positives": tp,
            "n_truth": nt,
            "n_called": nc,
            "recall": _ratio(tp, nt),
            "precision": _ratio(tp, nc),
        }
        for name, (tp, nt, nc) in sorted(out.items())
    }


def score(
    decoded_spots: pd.DataFrame,
    ground_truth_csv: str | PathLike | pd.DataFrame,
    max_distance_px: float = DEFAULT_MAX_DISTANCE_PX,
) -> dict:
    """Recall and precision of called spots against the ground truth.

    Parameters
    ----------
    decoded_spots : DataFrame with columns ``fov, target, x, y`` (pixel positions), one row
        per called spot (see :func:`spots_from_table`); rows with a missing target, or with
        a ``passes_thresholds`` column that is False, are ignored.
    ground_truth_csv : path of ``ground_truth.csv`` (or its DataFrame): ``fov, target, x, y``.
    max_distance_px : how far (in pixels) a call may be from its true spot.

    Returns a dict: ``recall``, ``precision`` (nan when undefined), ``f1``,
    ``true_positives``, ``n_truth``, ``n_called``, ``max_distance_px``, ``per_fov`` and
    ``per_target`` (each ``{name: {true_positives, n_truth, n_called, recall, precision}}``).
    A call in a FOV that has no true spot (or an unknown FOV) is a false positive.
    """
    called, truth = _called_and_truth(decoded_spots, ground_truth_csv)
    per_pair = _counts_per_pair(called, truth, max_distance_px)
    tp = sum(v[0] for v in per_pair.values())
    n_truth, n_called = len(truth), len(called)
    recall, precision = _ratio(tp, n_truth), _ratio(tp, n_called)
    f1 = (
        2 * recall * precision / (recall + precision)
        if n_truth and n_called and (recall + precision) > 0
        else math.nan
    )
    return {
        "recall": recall,
        "precision": precision,
        "f1": f1,
        "true_positives": tp,
        "n_truth": n_truth,
        "n_called": n_called,
        "max_distance_px": float(max_distance_px),
        "per_fov": _summarise(per_pair, 0),
        "per_target": _summarise(per_pair, 1),
    }
