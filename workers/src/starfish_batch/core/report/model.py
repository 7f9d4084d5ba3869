"""What ``report.html`` shows, as plain data: built from summary.json, the per-FOV records and
what only the launcher knows (failures, the next command), by whoever writes the page.

Plain dicts in, dataclasses out: this package reads no file and knows neither AWS nor starfish,
so the merge and the launcher render the same page from what each of them has.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

DONE, EMPTY, FAILED, MISSING = "done", "empty", "failed", "missing"
STATUSES = (DONE, EMPTY, FAILED, MISSING)
"""A FOV is *done* with at least one decoded spot, *empty* with an output and none, *failed*
when its worker failed, *missing* with no output and no known failure (not run yet, or lost)."""


@dataclass
class FovRow:
    """One FOV on the map and in the distributions."""

    name: str
    status: str
    spots: int | None = None
    features: int | None = None
    seconds: float | None = None
    peak_memory_bytes: int | None = None
    attempts: int | None = None
    extent: tuple[float, float, float, float] | None = None  # x0, x1, y0, y1 in stage units
    owned: list[tuple[float, float]] | None = None  # the polygon it owns where FOVs overlap
    dropped: int | None = None  # its transcripts dropped as a neighbour's (merge/overlap.py)
    overlaps: list[tuple[float, float, float, float]] | None = None  # x0, x1, y0, y1 it shares


@dataclass
class FailureRow:
    """A failed FOV (or the merge: ``fov`` None) with what its log says."""

    fov: str | None
    headline: str
    log: str | None = None
    tail: list[str] | None = None
    attempts: int | None = None


@dataclass
class RunReport:
    """Everything on the page. ``state`` is ``merged``, ``partial``, ``failed`` or ``running``."""

    run_id: str
    state: str
    fovs: list[FovRow]
    written_at: str
    experiment_url: str = ""
    recipe_sha256: str = ""
    created_at: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    n_features: int | None = None
    n_spots: int | None = None
    n_features_without_target: int = 0
    spot_definition: str = ""
    targets: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: list[FailureRow] = field(default_factory=list)
    n_failures: int = 0  # all failed FOVs, also those beyond ``failures``
    commands: dict[str, str] = field(default_factory=dict)  # what to do next -> exact command
    cost: dict | None = None
    timings: dict[str, object] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    source: str = ""  # who wrote the page: the merge, the launcher, status
    tissue: dict | None = None  # the merge's tissue payload (merge/tissue.py): map, cells, decoding QC
    codebook: list[str] | None = None  # the codebook's targets, when it could be read

    def count(self, status: str) -> int:
        return sum(1 for f in self.fovs if f.status == status)


def extent_of(entry: Mapping | None) -> tuple[float, float, float, float] | None:
    """``(x0, x1, y0, y1)`` from a record's or summary entry's ``extent`` ({"xc": [lo, hi],
    "yc": [lo, hi]}), or None when it has none or a malformed one."""
    ext = entry.get("extent") if entry else None
    try:
        (x0, x1), (y0, y1) = ext["xc"], ext["yc"]
        return float(x0), float(x1), float(y0), float(y1)
    except (TypeError, KeyError, ValueError):
        return None


def _int(value) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _float(value) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _polygon(value) -> list[tuple[float, float]] | None:
    try:
        return [(float(x), float(y)) for x, y in value]
    except (TypeError, ValueError):
        return None


def _rects(value) -> list[tuple[float, float, float, float]] | None:
    try:
        return [(float(a), float(b), float(c), float(d)) for a, b, c, d in value]
    except (TypeError, ValueError):
        return None


def fov_rows(
    fovs: Sequence[str],
    summary: Mapping | None = None,
    records: Mapping[str, Mapping] | None = None,
    failed: Iterable[str] = (),
    positions: Mapping[str, tuple[float, float, float, float]] | None = None,
) -> list[FovRow]:
    """One row per FOV of the run, in run order.

    ``summary`` is summary.json as a dict (its ``fovs`` entries count decoded spots); without
    one (the merge did not run) a FOV's record gives its passing features instead.
    ``records`` are ``fovs/<fov>.json`` as dicts; ``positions`` place FOVs that have no extent
    in either (a failed FOV writes no record).
    """
    merged = (summary or {}).get("fovs") or {}
    records = records or {}
    positions = positions or {}
    failed = set(failed)
    rows = []
    for name in fovs:
        entry, record = merged.get(name), records.get(name)
        spots = features = None
        if entry is not None:
            spots, features = _int(entry.get("spots")), _int(entry.get("features"))
        elif record is not None:
            spots, features = _int(record.get("n_passing")), _int(record.get("n_features"))
        has_output = entry is not None or record is not None
        if name in failed and not has_output:
            status = FAILED
        elif not has_output:
            status = MISSING
        else:
            status = EMPTY if spots == 0 else DONE  # None: an output whose record was not read
        source = entry if entry is not None else (record or {})
        rows.append(FovRow(
            name=name, status=status, spots=spots, features=features,
            seconds=_float(source.get("seconds", (record or {}).get("seconds"))),
            peak_memory_bytes=_int(source.get("peak_memory_bytes", (record or {}).get("peak_memory_bytes"))),
            attempts=_int(source.get("attempts", (record or {}).get("attempts"))),
            extent=extent_of(entry) or extent_of(record) or positions.get(name),
            owned=_polygon((entry or {}).get("owned")), dropped=_int((entry or {}).get("dropped")),
            overlaps=_rects((entry or {}).get("overlaps")),
        ))
    return rows
