"""What the launcher prints at the end of a run: failures a scientist can act on, and a summary."""

from __future__ import annotations

import importlib.util
import logging
import shlex
import sys
from collections.abc import Sequence

from starfish_batch.core import printable, storage
from starfish_batch.core.contract import (
    CELLS_NAME,
    LAUNCHER,
    MERGE,
    OUTPUT_NAMES,
    PROCESS_FOV,
    SPATIALDATA_NAME,
    SPOTS_NAME,
    SUMMARY_NAME,
)
from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.core.manifest import Manifest
from starfish_batch.core.records import Summary
from starfish_batch.launcher.executors.batch.watch import ACTIVE, QUEUED
from starfish_batch.launcher.outcome import Failure


def say(text: str = "") -> None:
    """A line for the scientist, on stderr (stdout carries what scripts read: ids, JSON, paths);
    no control character of a name or a log reaches the terminal."""
    print(printable.escape_lines(text), file=sys.stderr, flush=True)


class RetryNotices(logging.Handler):
    """Says, one line each, what a slow network step is waiting for (urllib3's retries of an
    ``https://`` experiment), so a dead host is not a silent minute."""

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        if not record.getMessage().startswith("Retrying") or len(args) < 3:
            return
        retry, error, path = args[:3]
        conn = getattr(error, "conn", None)
        host = f"{conn.host}:{conn.port}" if hasattr(conn, "host") else ""
        cause = getattr(error, "__cause__", None) or getattr(error, "__context__", None)
        reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else type(error).__name__
        left = getattr(retry, "total", None)
        again = "trying one last time" if left == 0 else "trying again" + (
            f" ({left} tries left)" if isinstance(left, int) else "")
        say(f"{LAUNCHER}: waiting for {host}{path} ({reason}); {again}")

    @classmethod
    def install(cls) -> None:
        logger = logging.getLogger("urllib3.connectionpool")
        if not any(isinstance(h, cls) for h in logger.handlers):
            logger.addHandler(cls(logging.WARNING))


def print_failures(failures: Sequence[Failure]) -> None:
    """The one printer of failed FOVs, for both executors: headline, then the log's last lines.

    FOVs that failed for the same cause (a recipe bug fails them all alike) are told once,
    with the first one's log, and the others named.
    """
    groups: dict[str, list[Failure]] = {}
    for failure in failures:
        groups.setdefault(failure.cause if failure.fov is not None else repr(failure), []).append(failure)
    for group in groups.values():
        failure = group[0]
        say(f"{LAUNCHER}: {failure.headline()}")
        if failure.out_of_memory:
            say(f"  {out_of_memory_advice(failure)}")
        if len(group) > 1:
            names = ", ".join(printable.line(f.fov or "?") for f in group[1:21])
            more = f" and {len(group) - 21} more" if len(group) > 21 else ""
            say(f"  {len(group) - 1} other FOV(s) failed the same way: {names}{more}")
        tail = next((f for f in group if f.tail is not None), None)
        if tail is None:
            continue
        if tail.log:
            say(f"  last lines of log {printable.line(tail.log)}:")
        for line in printable.bounded_tail(tail.tail):
            say(f"  | {line}")


def print_interrupted(manifest: Manifest, resume_command: str) -> None:
    """What a stopped run (Ctrl-C, SIGTERM) says: its workers are stopped, nothing written is lost."""
    say(f"\ninterrupted: the workers are stopped; outputs written so far are kept under "
        f"{manifest.run_root}\ncontinue with: {resume_command}")


def out_of_memory_advice(failure: Failure) -> str:
    """What to do about a FOV killed for memory, on the executor it ran on."""
    if getattr(failure, "state", None):  # a Slurm task (launcher.executors.slurm.failures.SlurmFailure)
        return ("out of memory: the job used more than its --mem; FOVs are resubmitted with twice the "
                "memory up to --max-memory: rerun with a higher --max-memory, or a higher --mem")
    if failure.job_id:
        return ("out of memory: the container used more than its memory; rerun with a higher "
                "--max-memory (FOVs are resubmitted with twice the memory up to it), or raise "
                "process_fov_memory in the Terraform module")
    peak = (f" (its peak: {failure.peak_memory_bytes / 2**30:.2f} GiB)"
            if failure.peak_memory_bytes else "")
    return (f"out of memory{peak}: run fewer FOVs at once (--workers) or on a machine with "
            f"more memory")


def failed_fovs_line(failures: Sequence[Failure], n_fovs: int) -> str:
    names = ", ".join(printable.line(f.fov or "?") for f in failures[:20])
    more = f" and {len(failures) - 20} more" if len(failures) > 20 else ""
    return f"{len(failures)} of {n_fovs} FOVs failed ({names}{more})"


def stopped_early_line(error: str, failures: Sequence[Failure], then: str) -> str:
    """Said once when a run stops because its first FOVs all failed with one error."""
    names = ", ".join(printable.line(f.fov or "?") for f in failures[:20])
    return (f"stopped early: the first {len(failures)} FOVs to finish all failed with the same "
            f"error: {error} ({names}); {then}")


def print_job_ids(run) -> None:
    """--no-wait: the run id and every job id on stdout, one per line, for scripts (Batch and Slurm)."""
    print(f"run_id {run.run_id}")
    for job in run.process_jobs:
        print(f"{PROCESS_FOV} {job.job_id}")
    print(f"{MERGE} {run.merge_job_id}", flush=True)


def submitted_text(run) -> str:
    """What a Batch submission put on the queue, and where its job ids are kept."""
    lines = [f"submitted run {run.run_id} to {run.job_queue}:"]
    per = getattr(run, "fovs_per_job", 1)
    for job in run.process_jobs:
        if per > 1:  # packed: children of `per` FOVs; FOV indexes from the first child's
            kind = f"array of {job.size} children of up to {per} FOVs" if job.is_array else f"up to {per} FOVs"
            lines.append(f"  {PROCESS_FOV} {job.job_id} ({kind}, FOV indexes from {job.offset * per})")
            continue
        kind = f"array of {job.size}" if job.is_array else "1 FOV"
        lines.append(f"  {PROCESS_FOV} {job.job_id} ({kind}, FOVs {job.offset} to {job.offset + job.size - 1})")
    if run.merge_job_id:
        lines.append(f"  {MERGE} {run.merge_job_id} (after {len(run.process_jobs)} process-fov job(s))")
    lines.append(f"  job ids saved in {run.jobs_url}")
    return "\n".join(lines)


class BatchProgress:
    """Follows a Batch run on the terminal: a progress bar, failures printed as they appear."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.bar = None

    def warn(self, text: str) -> None:
        say(text)

    def progress(self, counts: dict[str, int], total: int) -> None:
        from tqdm import tqdm  # lazy: tqdm ~70 ms

        if self.bar is None:
            self.bar = tqdm(total=total, desc="FOVs", unit="fov", disable=not self.enabled,
                            file=sys.stderr, dynamic_ncols=True)
        self.bar.n = counts["SUCCEEDED"] + counts["FAILED"]
        self.bar.set_postfix(queued=sum(counts[s] for s in QUEUED), running=sum(counts[s] for s in ACTIVE),
                             failed=counts["FAILED"], refresh=False)
        self.bar.refresh()

    def failed(self, failures: list[Failure]) -> None:
        if self.bar is not None:
            self.bar.clear()
        print_failures(failures)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def print_summary(manifest: Manifest, seconds: float, ground_truth: str | None = None,
                  processed: int | None = None) -> None:
    """The figures a scientist looks at first, read back from what the merge wrote.

    ``processed``: the FOVs this pass processed, when fewer than the run's (a resume)."""
    summary_url = storage.join(manifest.run_root, SUMMARY_NAME)
    summary = Summary.from_json(storage.read_bytes(summary_url), summary_url)
    n_run = len(manifest.run_fovs)
    if processed is not None and processed != n_run:
        what = f"{processed} FOVs processed in {seconds:.1f} s, {n_run} in the run"
    else:
        what = f"{n_run} FOVs in {seconds:.1f} s"
    print(f"\nrun {manifest.run_id}: {what}")
    if manifest.subset_of:
        print(f"  partial: {len(manifest.run_fovs)} of the experiment's {manifest.subset_of} FOVs "
              "(--fovs); start a run without it for the whole experiment")
    undecoded = (f" ({summary.n_features_without_target} without a target)"
                 if summary.n_features_without_target else "")
    print(f"  features: {summary.n_features}{undecoded}, decoded spots: {summary.n_spots}")
    if summary.overlap.get("say"):
        print(f"  {summary.overlap.get('closing_line')}")
    empty = summary.fovs_without_spots
    if empty:
        print(f"  FOVs without spots: {', '.join(map(printable.line, empty[:10]))}{' ...' if len(empty) > 10 else ''}")
    if summary.missing_fovs:
        print(f"  FOVs missing from the merge: {', '.join(map(printable.line, summary.missing_fovs[:10]))}")
    if summary.targets:
        top = sorted(summary.targets.items(), key=lambda kv: (-_count(kv[1]), kv[0]))
        print("  spots per target:")
        for target, value in top[:15]:
            print(f"    {printable.line(target, 100):<20} {_count(value)}")
        if len(top) > 15:
            print(f"    ... and {len(top) - 15} more targets")
    if summary.bill:
        for line in bill_lines(summary.bill):
            print(f"  {line}")
    if ground_truth:
        _print_score(manifest, ground_truth)
    print("  outputs:")
    optional = tuple(n for key, n in (("cells", CELLS_NAME), ("spatialdata", SPATIALDATA_NAME))
                     if key in summary.outputs)
    for name in OUTPUT_NAMES + optional:
        print(f"    {shlex.quote(storage.join(manifest.run_root, name))}")
    if CELLS_NAME in optional and not _importable("anndata"):
        print(f"  {CELLS_NAME} opens with anndata, not installed here: "
              f"{shlex.quote(sys.executable)} -m pip install {shlex.quote(ANNDATA_REQUIREMENT)}")


ANNDATA_REQUIREMENT = "anndata>=0.10,<0.13"
"""What reads cells.h5ad (the merge writes it with h5py; the worker images do not need anndata)."""


def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def bill_lines(bill: dict) -> list[str]:
    """The bill of a run in words: what it used, and on Batch what that cost, said as an estimate."""
    retries = f" ({bill['retries']} retries)" if bill.get("retries") else ""
    lines = [f"used: {bill['vcpu_hours']:.3f} vCPU-hours, {bill['gb_hours']:.3f} GB-hours, "
             f"{bill['attempts']} job attempts{retries}"]
    if bill.get("cost_usd") is not None:
        lines.append(f"estimated cost: ${bill['cost_usd']:.4f} USD ({bill.get('note', 'an estimate')})")
        lines.append(f"  prices: {bill.get('prices', '')}")
    return lines


def _count(value) -> int:
    return int(value.get("spots", value.get("n_spots", 0))) if isinstance(value, dict) else int(value)


def _print_score(manifest: Manifest, ground_truth: str) -> None:
    import pandas as pd  # lazy: pandas ~1.8 s

    from starfish_batch.launcher.score import score  # lazy: launcher.score pulls scipy into CLI start-up

    spots_url = storage.join(manifest.run_root, SPOTS_NAME)
    try:
        with storage.local_copy(spots_url) as path:
            spots = pd.read_csv(path, dtype={"fov": str, "target": str}, keep_default_na=False, na_values=[""])
        with storage.local_copy(storage.absolute(ground_truth)) as path:
            truth = pd.read_csv(path, dtype={"fov": str, "target": str})
        if manifest.subset_of:  # a partial run is scored on its own FOVs' true spots
            truth = truth[truth["fov"].isin(manifest.run_fovs)]
        result = score(spots, truth)
    except (OSError, ValueError, KeyError) as exc:
        raise StarfishBatchError(f"cannot score against {ground_truth}: {exc}") from exc
    print(f"  against the ground truth {ground_truth}:")
    print(f"    recall {result['recall']:.3f}, precision {result['precision']:.3f} "
          f"({result['true_positives']} of {result['n_truth']} true spots, "
          f"{result['n_called']} called)")
