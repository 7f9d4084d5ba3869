"""Collect a run's report from its folder and write ``<run_root>/report.html``.

The one place both writers go through: the merge (which has summary.json's data and every
record in hand) and the launcher (which adds the failures and the next command, and reads the
rest back from the run folder). The page itself is :mod:`starfish_batch.core.report`.

FOV positions come from ``extent`` in each FOV's record (written by process-fov from the tile
documents it reads anyway) and summary.json. A FOV without a record (failed, killed, not run
yet) is placed by reading its tile-set documents, for at most ``MAX_POSITION_LOOKUPS`` FOVs;
any others are drawn in a strip of their own under the map.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from starfish_batch.core import storage
from starfish_batch.core.contract import FOVS_DIR, REPORT_NAME, SUMMARY_NAME
from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.core.experiment import ExperimentDocument
from starfish_batch.core.experiment.extent import stage_extent
from starfish_batch.core.experiment.urls import normalize
from starfish_batch.core.manifest import Manifest
from starfish_batch.core.report import FAILED, FailureRow, RunReport, extent_of, fov_rows, render_html
from starfish_batch.core.report.payload import TISSUE_NAME

MAX_POSITION_LOOKUPS = 100
MAX_RECORD_READS = 2_000
"""Records read back when summary.json does not exist (a run not merged); FOVs beyond this
count as done with unknown counts (the listing still says which have an output)."""
READ_THREADS = 16
HTML_TYPE = "text/html; charset=utf-8"
"""report.html's type in S3: a browser opening it from the bucket shows a page, not a download."""
COST_KEYS = ("cost", "cost_estimate", "bill")
"""summary.json's cost estimate, under whichever of these names it has: shown as it is."""


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def report_url(manifest: Manifest) -> str:
    return storage.join(manifest.run_root, REPORT_NAME)


def read_summary(manifest: Manifest) -> dict | None:
    """summary.json as a dict (every field, also those newer writers add), or None if absent."""
    url = storage.join(manifest.run_root, SUMMARY_NAME)
    if not storage.exists(url):
        return None
    try:
        doc = json.loads(storage.read_bytes(url))
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def read_records(manifest: Manifest, limit: int = MAX_RECORD_READS) -> dict[str, dict]:
    """``fovs/<fov>.json`` of the FOVs that have an output (one listing, then up to ``limit``
    reads on threads); FOVs beyond ``limit`` map to ``{}`` (output present, record unread)."""
    names = set(storage.list_names(storage.join(manifest.run_root, FOVS_DIR)))
    present = [f for f in manifest.run_fovs if f"{f}.nc" in names and f"{f}.json" in names]

    def read(fov: str) -> dict:
        try:
            doc = json.loads(storage.read_bytes(manifest.fov_url(fov, ".json")))
        except (StarfishBatchError, ValueError):
            return {}
        return doc if isinstance(doc, dict) else {}

    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        records = dict(zip(present[:limit], pool.map(read, present[:limit]), strict=True))
    records.update({fov: {} for fov in present[limit:]})
    return records


def locate(experiment_url: str, fovs: Sequence[str], limit: int = MAX_POSITION_LOOKUPS) -> dict:
    """Stage extents of up to ``limit`` FOVs, read from the experiment's tile-set documents;
    a FOV whose documents cannot be read is left out (drawn unplaced), never an error."""
    if not fovs or limit <= 0:
        return {}

    try:
        experiment = ExperimentDocument.open(normalize(experiment_url))
    except Exception:
        return {}
    found = {}
    for fov in fovs[:limit]:
        try:
            extent = extent_of({"extent": stage_extent(experiment.fov_tilesets(fov))})
        except Exception:
            continue
        if extent is not None:
            found[fov] = extent
    return found


def collect(
    manifest: Manifest,
    *,
    summary: Mapping | None,
    records: Mapping[str, Mapping] | None,
    state: str,
    source: str,
    failures: Iterable[FailureRow] = (),
    commands: Mapping[str, str] | None = None,
    lookups: int = MAX_POSITION_LOOKUPS,
    tissue: Mapping | None = None,
) -> RunReport:
    """The report of ``manifest``'s run from what the caller has. ``tissue``: the merge's
    tissue payload (``merge.tissue``); without it, the one the merge left beside the page."""
    failures = list(failures)
    failed = {f.fov for f in failures if f.fov is not None}
    rows = fov_rows(manifest.run_fovs, summary, records, failed)
    tried = {f.fov: f.attempts for f in failures if f.fov is not None and f.attempts}
    for r in rows:
        if r.attempts is None and r.name in tried:
            r.attempts = tried[r.name]
    unplaced = [r.name for r in rows if r.extent is None and r.status == FAILED]
    unplaced += [r.name for r in rows if r.extent is None and r.status != FAILED]
    if unplaced and lookups:
        positions = locate(manifest.experiment_url, unplaced, lookups)
        for r in rows:
            if r.extent is None and r.name in positions:
                r.extent = positions[r.name]
    summary = summary or {}
    versions = {}
    for record in (records or {}).values():
        if record.get("versions"):
            versions = dict(record["versions"])
            break
    return RunReport(
        run_id=manifest.run_id, state=state, fovs=rows, written_at=now(), source=source,
        experiment_url=manifest.experiment_url, recipe_sha256=manifest.recipe_sha256,
        created_at=manifest.created_at,
        versions=versions or {"starfish_batch": manifest.version},
        n_features=summary.get("n_features"), n_spots=summary.get("n_spots"),
        n_features_without_target=int(summary.get("n_features_without_target") or 0),
        spot_definition=str(summary.get("spot_definition") or ""),
        targets=dict(summary.get("targets") or {}),
        failures=failures, n_failures=len(failed) or len(failures),
        commands=dict(commands or {}),
        cost=next((summary[k] for k in COST_KEYS if isinstance(summary.get(k), dict)), None),
        timings=dict(summary.get("timings") or {}),
        outputs={k: relative_to(manifest.run_root, str(v)) for k, v in (summary.get("outputs") or {}).items()},
        notes=list(summary.get("notes") or []) + _overlap_note(summary),
        tissue=dict(tissue) if tissue is not None else read_tissue(manifest) if summary else None,
        codebook=codebook_targets(manifest.experiment_url),
    )


def relative_to(root: str, url: str) -> str:
    """``url`` relative to the run folder ``root`` (where report.html is), when it is inside it;
    as it is otherwise (already relative, or elsewhere)."""
    if storage.is_s3(root):
        base = root.rstrip("/") + "/"
        return url[len(base):] if url.startswith(base) else url
    if "://" in url and not url.startswith("file://"):
        return url

    path = url[len("file://"):] if url.startswith("file://") else url
    if not os.path.isabs(path):
        return path
    base = storage.absolute(root)
    try:
        if os.path.commonpath([os.path.realpath(base), os.path.realpath(path)]) == os.path.realpath(base):
            return os.path.relpath(os.path.realpath(path), os.path.realpath(base)).replace(os.sep, "/")
    except ValueError:  # another drive
        pass
    return url


def read_tissue(manifest: Manifest) -> dict | None:
    """The merge's tissue payload (``report_tissue.json``), or None when absent or unreadable."""
    url = storage.join(manifest.run_root, TISSUE_NAME)
    try:
        doc = json.loads(storage.read_bytes(url))
    except (StarfishBatchError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def codebook_targets(experiment_url: str) -> list[str] | None:
    """The codebook's targets (SpaceTx ``mappings``), in order, or None when it cannot be read."""
    try:
        doc = json.loads(ExperimentDocument.open(normalize(experiment_url)).read_codebook())
        mappings = doc["mappings"] if isinstance(doc, dict) else doc
        return list(dict.fromkeys(str(m["target"]) for m in mappings))
    except Exception:  # noqa: BLE001 - the page says the codebook was not read
        return None


def _overlap_note(summary: Mapping) -> list[str]:
    """The overlap rule's closing line, where it did something or the layout needs saying."""
    overlap = summary.get("overlap") if isinstance(summary.get("overlap"), dict) else {}
    return [str(overlap["closing_line"])] if overlap.get("say") and overlap.get("closing_line") else []


def write(manifest: Manifest, report: RunReport) -> str:
    """Render and write ``report.html``; returns its URL."""
    url = report_url(manifest)
    storage.write_text(url, render_html(report), content_type=HTML_TYPE)
    return url


def write_tissue(manifest: Manifest, tissue: Mapping) -> None:
    """The merge's tissue payload beside the page, for the launcher and ``status`` to draw it again."""
    storage.write_text(storage.join(manifest.run_root, TISSUE_NAME), json.dumps(tissue),
                       content_type="application/json")
