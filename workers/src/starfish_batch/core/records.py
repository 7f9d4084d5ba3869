"""The two records that cross process boundaries after the manifest: each FOV's
``fovs/<fov>.json`` (written by process-fov, read by retries, the merge and the launcher) and
the run's ``summary.json`` (written by the merge, read by the launcher). docs/design.md,
sections 7 and 8, describe every field.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field

from starfish_batch.core.errors import StarfishBatchError


class _JsonRecord:
    """A dataclass written as one JSON object and read back, naming the file when it is bad."""

    INDENT = 2
    KIND = "record"  # names the record in errors when the caller gives no file

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=self.INDENT) + "\n"

    @classmethod
    def from_json(cls, data: str | bytes, source: str | None = None):
        return cls(**_load(cls, data, source or cls.KIND))


def _load(cls, data: str | bytes, source: str) -> dict:
    """The fields of ``cls`` from a JSON object; unknown keys (a newer writer's) are ignored."""
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise StarfishBatchError(f"{source} is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise StarfishBatchError(f"{source} is not a JSON object")
    names = {f.name for f in dataclasses.fields(cls)}
    required = {f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    missing = sorted(required - doc.keys())
    if missing:
        raise StarfishBatchError(f"{source} lacks {', '.join(missing)}")
    return {k: v for k, v in doc.items() if k in names}


@dataclass
class FovRecord(_JsonRecord):
    """``fovs/<fov>.json``: one FOV's outcome, timings (seconds) and resources."""

    KIND = "FOV record"

    fov: str
    recipe_sha256: str
    n_features: int
    index: int = -1  # the FOV's position in the run's FOVs (manifest run_fovs), the same in every manifest
    run_id: str = ""
    n_passing: int = 0
    seconds: float | None = None  # load + recipe + write
    seconds_recipe: float | None = None
    seconds_load: float | None = None
    seconds_write: float | None = None
    tiles: int = 0
    tile_bytes: int = 0
    peak_memory_bytes: int | None = None
    cpus: int | None = None
    started_at: str = ""
    host: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    extent: dict[str, list[float]] | None = None  # stage bounds {"xc": [lo, hi], "yc": [lo, hi]}
    nc_bytes: int | None = None  # size and sha256 of fovs/<fov>.nc: the proof that it is whole
    nc_sha256: str = ""
    nc_etag: str = ""  # in S3: the ETag of fovs/<fov>.nc as uploaded (a listing gives it to compare)


@dataclass
class Summary(_JsonRecord):
    """``summary.json``: counts per FOV and per target, what is missing, and timings."""

    run_id: str
    n_fovs: int
    n_fovs_merged: int
    n_features: int
    n_spots: int
    n_features_without_target: int = 0  # starfish's "nan" (not decoded): counted, not a target
    spot_definition: str = ""
    missing_fovs: list[str] = field(default_factory=list)
    fovs_without_features: list[str] = field(default_factory=list)
    fovs_without_spots: list[str] = field(default_factory=list)
    timings: dict[str, object] = field(default_factory=dict)
    targets: dict[str, dict[str, int]] = field(default_factory=dict)  # target -> features, spots
    fovs: dict[str, dict[str, float]] = field(default_factory=dict)  # fov -> features, spots, seconds, ...
    notes: list[str] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    bill: dict[str, object] = field(default_factory=dict)  # added by the launcher (launcher/bill.py)
    overlap: dict[str, object] = field(default_factory=dict)  # the overlap rule and its counts (merge/overlap.py)

    INDENT = 1  # summary.json is large at 10,000 FOVs
    KIND = "summary"
