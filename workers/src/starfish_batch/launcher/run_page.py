"""The launcher's part of ``report.html``: what only it knows (which FOVs failed, their error
line and log tail, the command to run next) added to what the run folder holds, at the end of
every run and on ``status``. Both executors come through here, with the ``Failure`` objects
the one printer (``console.print_failures``) prints and the commands ``cli`` prints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from starfish_batch.core import printable
from starfish_batch.core.manifest import Manifest, relative_to_run
from starfish_batch.core.report import FailureRow
from starfish_batch.launcher.console import say
from starfish_batch.launcher.outcome import Failure


def failure_rows(failures: Sequence[Failure | None], run_root: str | None = None) -> list[FailureRow]:
    """The page's failures: the printer's headline, log location and tail, bounded as printed; a
    log inside the run folder (``logs/<fov>.log``) named relative to it, so a moved or shared
    folder keeps it."""
    return [FailureRow(fov=f.fov, headline=f.headline(),
                       log=printable.line(relative_to_run(run_root, f.log) if run_root else f.log) if f.log else None,
                       tail=printable.bounded_tail(f.tail) if f.tail else None, attempts=f.attempts)
            for f in failures if f is not None]


def write_page(manifest: Manifest, state: str, failures: Sequence[Failure | None] = (),
               commands: Mapping[str, str] | None = None, source: str = "the launcher") -> str | None:
    """Write ``<run_root>/report.html`` and say where; a page that cannot be written is one
    warning line, never a different exit code."""
    from starfish_batch.core.report import collect as run_report  # lazy: report.collect ~13 ms of CLI start-up

    try:
        summary = run_report.read_summary(manifest)
        # summary.json holds every merged FOV's figures: then one record suffices (its versions)
        records = run_report.read_records(manifest, limit=1 if summary else run_report.MAX_RECORD_READS)
        report = run_report.collect(manifest, summary=summary, records=records, state=state, source=source,
                                    failures=failure_rows(failures, manifest.run_root), commands=commands)
        url = run_report.write(manifest, report)
    except Exception as exc:  # noqa: BLE001 - the run's own outcome matters more than its page
        say(f"warning: report.html not written: {type(exc).__name__}: {exc}")
        return None
    say(f"report: {url}")
    return url
