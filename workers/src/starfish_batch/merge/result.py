"""What a merge returns and leaves beside its outputs: the result, the outputs' paths as the
run folder keeps them, and report.html (a warning, never a failed merge, when it cannot be made)."""

from __future__ import annotations

import dataclasses
import sys

from starfish_batch.core.contract import MERGE as PROG
from starfish_batch.core.manifest import Manifest, relative_to_run


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


def relative_outputs(root: str, outputs: dict[str, str]) -> dict[str, str]:
    """The outputs as summary.json and the report keep them: relative to the run folder, so a
    folder moved or shared keeps working."""
    return {key: relative_to_run(root, url) for key, url in outputs.items()}


def tissue_payload(tissue, summary, cells) -> dict | None:
    """report.html's tissue data; a failure here is a page without a tissue, never a failed merge."""
    from starfish_batch.core.report.model import extent_of  # lazy: core.report pulls numpy into merge start-up

    try:
        extents = {fov: extent_of(entry) for fov, entry in summary.fovs.items()}
        return tissue.payload(extents, cells if cells.why_none() is None else None)
    except Exception as exc:  # noqa: BLE001
        print(f"{PROG}: warning: the report's tissue map not collected: {type(exc).__name__}: {exc}",
              file=sys.stderr)
        return None


def write_report(manifest: Manifest, result: MergeResult) -> None:
    """report.html from what the merge has in hand; a page that cannot be written is a warning,
    never a failed merge (the launcher writes it again at the end of the run)."""
    from starfish_batch.core.report import collect as run_report  # lazy: core.report pulls numpy into merge start-up

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
