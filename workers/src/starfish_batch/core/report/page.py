"""``report.html``: one self-contained page (inline CSS, SVG and a few lines of optional script;
nothing fetched) that a scientist opens after a run, or during one.

Everything essential is HTML and SVG written here; the script only adds a FOV search box.
Lists that grow with the run are bounded (``TOP``), so 10,000 FOVs give a page of about a MB.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable, Sequence
from html import escape
from urllib.parse import quote

from starfish_batch.core.report.model import DONE, EMPTY, FAILED, MISSING, STATUSES, FailureRow, FovRow, RunReport
from starfish_batch.core.report.svg import MAX_MARKS, fov_map, histogram
from starfish_batch.core.report.tissue import sections as tissue_sections
from starfish_batch.core.report.tissue_js import SCRIPT as TISSUE_SCRIPT

TOP = 15
"""Named FOVs per list (slowest, heaviest, fewest spots ...), targets shown before "and N more"."""
TOP_TARGETS = 60
MAX_FAILURES = 200
OPEN_TAILS = 2
"""Log tails shown unfolded; the others are one click away."""
STATE_TEXT = {
    "merged": "merged",
    "partial": "merged, with FOVs missing",
    "failed": "failed",
    "running": "still running",
    "interrupted": "interrupted",
}
STATUS_TEXT = {
    DONE: "done (decoded spots)",
    EMPTY: "empty (output, no decoded spot)",
    FAILED: "failed",
    MISSING: "missing (no output yet)",
}
CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1180px;
padding:0 18px 40px;color:#1b1b1b}
h1{font-size:22px;margin:18px 0 4px}h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid #ddd;padding-bottom:3px}
.muted{color:#666}.state{display:inline-block;padding:1px 8px;border-radius:9px;color:#fff;font-weight:600}
.state.merged{background:#2e7d32}.state.partial{background:#b26a00}.state.failed{background:#c62828}.state.running,.state.interrupted{background:#1565c0}
table{border-collapse:collapse;margin:4px 0}td,th{padding:2px 10px 2px 0;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
pre{background:#f5f5f5;padding:6px 8px;overflow-x:auto;white-space:pre-wrap;word-break:break-all;margin:4px 0}
.cols{display:flex;flex-wrap:wrap;gap:28px}.kv th{font-weight:500;color:#555}
.m{stroke:#fff;stroke-width:.3}.m.done{fill:#2e7d32}.m.d0{fill:#b7dfb9}.m.d1{fill:#81c784}.m.d2{fill:#4caf50}
.m.d3{fill:#2e7d32}.m.d4{fill:#1b5e20}.m.empty{fill:#f9a825}.m.failed{fill:#d32f2f}.m.missing{fill:#9e9e9e}
.m.hit{stroke:#000;stroke-width:2}.nm{font-size:12px;fill:#fff;stroke:#000;stroke-width:2.5px;paint-order:stroke;pointer-events:none}.ax{font-size:11px;fill:#555}.axl{stroke:#999}.bar{fill:#5c6bc0}
.own{fill:none;stroke:#fff;stroke-width:1.6;stroke-dasharray:5 3}.ovl{fill:#fff;fill-opacity:.35;stroke:none}
.sw{display:inline-block;width:11px;height:11px;margin:0 4px 0 12px;vertical-align:-1px}
.sw.done{background:#2e7d32}.sw.empty{background:#f9a825}.sw.failed{background:#d32f2f}.sw.missing{background:#9e9e9e}
.tb{display:inline-block;height:9px;background:#5c6bc0;vertical-align:0}
details{margin:4px 0}summary{cursor:pointer}
.map{line-height:0}.map img,.map canvas,img.fig{border:1px solid #ddd;max-width:100%;height:auto}
.pick{display:inline-block;margin:0 10px 2px 0;white-space:nowrap}#tissue-picks{max-height:90px;overflow-y:auto}
"""
SCRIPT = """
(function(){var box=document.getElementById('fovfind');if(!box)return;box.hidden=false;
var marks=document.querySelectorAll('#fovmap .m');var out=document.getElementById('fovfound');
box.querySelector('input').addEventListener('input',function(e){var q=e.target.value.trim().toLowerCase();var n=0;
for(var i=0;i<marks.length;i++){var t=marks[i].textContent.toLowerCase();var hit=q&&t.indexOf(q)>=0;
marks[i].classList.toggle('hit',!!hit);if(hit)n++;}out.textContent=q?n+' mark(s) match':'';});})();
"""


def _num(value, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"


def _mib(value) -> str:
    return "-" if value is None else f"{value / 2**20:,.0f} MiB"


def _kv(pairs: Sequence[tuple[str, str]]) -> str:
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in pairs if v not in (None, ""))
    return f'<table class="kv">{rows}</table>'


def _code(text: str) -> str:
    return f"<code>{escape(str(text))}</code>"


RELATIVE_MARGIN = 1.0
"""An outlier is at least this much above the median, relatively (1.0: twice the median) ..."""
ABSOLUTE_MARGINS = {"s": 30.0, "MiB": 512.0, "spots": 100.0}
"""... and by at least this much in the distribution's unit: 3 s against a median of 1.9 s is noise."""


def outliers(rows: Sequence[FovRow], key: Callable[[FovRow], float | None], n: int = TOP,
             margin: float = 0.0) -> tuple[list, float | None]:
    """The ``n`` largest values, named, and the fence above which a value is an outlier: beyond
    the third quartile plus three interquartile ranges, twice the median (``RELATIVE_MARGIN``)
    and the median plus ``margin`` alike."""
    pairs = sorted(((key(r), r.name) for r in rows if key(r) is not None), reverse=True)
    if not pairs:
        return [], None
    values = sorted(v for v, _ in pairs)
    q1, q3 = values[len(values) // 4], values[(3 * len(values)) // 4]
    median = statistics.median(values)
    return pairs[:n], max(q3 + 3 * (q3 - q1), median * (1 + RELATIVE_MARGIN), median + margin)


def _percentiles(values: Sequence[float]) -> str:
    values = sorted(values)
    if not values:
        return ""

    def q(p):
        return values[min(len(values) - 1, int(p * len(values)))]

    return f"median {statistics.median(values):,.3g}, 90th percentile {q(0.9):,.3g}, max {values[-1]:,.3g}"


def _distribution(title: str, rows: Sequence[FovRow], key, unit: str, fmt) -> str:
    values = [key(r) for r in rows if key(r) is not None]
    top, fence = outliers(rows, key, margin=ABSOLUTE_MARGINS.get(unit, 0.0))
    items = "".join(
        f'<tr><td>{escape(name)}</td><td class="n">{fmt(v)}</td>'
        f"<td>{'outlier' if fence is not None and v > fence else ''}</td></tr>" for v, name in top)
    return (f"<div><h3>{escape(title)}</h3>{histogram(values, unit)}"
            f'<p class="muted">{_percentiles(values)}</p>'
            f"<details open><summary>largest {len(top)}</summary><table>{items}</table></details></div>")


def _header(r: RunReport) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in sorted(r.versions.items()))
    pairs = [
        ("run id", _code(r.run_id)),
        ("experiment", _code(r.experiment_url) if r.experiment_url else ""),
        ("recipe sha256", _code(r.recipe_sha256) if r.recipe_sha256 else ""),
        ("started", escape(r.created_at)),
        ("page written", f"{escape(r.written_at)}{' by ' + escape(r.source) if r.source else ''}"),
        ("versions", escape(versions)),
    ]
    if r.timings.get("merge_seconds") is not None:
        pairs.append(("merge", f"{_num(float(r.timings['merge_seconds']), 1)} s"))
    return (f'<h1>Run {escape(r.run_id)} <span class="state {escape(r.state)}">'
            f"{escape(STATE_TEXT.get(r.state, r.state))}</span></h1>" + _kv(pairs))


def _counts(r: RunReport) -> str:
    n = len(r.fovs)
    pairs = [("FOVs", f"{n:,}")]
    pairs += [(STATUS_TEXT[s], f"{r.count(s):,}") for s in STATUSES]
    if r.n_features is not None:
        pairs.append(("features", _num(r.n_features)))
    if r.n_spots is not None:
        pairs.append(("decoded spots", _num(r.n_spots)))
        if r.n_features:
            pairs.append(("decoded fraction", f"{r.n_spots / r.n_features:.1%} of features"))
    if r.n_features_without_target:
        pairs.append(("features without a target", _num(r.n_features_without_target)))
    if r.spot_definition:
        pairs.append(("a decoded spot is", escape(r.spot_definition)))
    if r.n_spots is None:
        pairs.append(("spots", "the merge has not run: per-FOV counts are features passing "
                               "thresholds, from each FOV's record"))
    return "<h2>Outcome</h2>" + _kv(pairs)


def _next(r: RunReport) -> str:
    if not r.commands:
        return ""
    items = "".join(f"<p>{escape(what)}:</p><pre>{escape(cmd)}</pre>" for what, cmd in r.commands.items())
    return f'<h2 id="next">What to do next</h2>{items}'


def _map(r: RunReport, max_marks: int) -> str:
    svg, drawn = fov_map(r.fovs, max_marks)
    legend = "".join(f'<span class="sw {s}"></span>{escape(STATUS_TEXT[s])} ({r.count(s):,})' for s in STATUSES)
    how = ("one mark per FOV" if not drawn["aggregated"] else
           f"{len(r.fovs):,} FOVs binned into {drawn['marks']:,} cells, each coloured by its worst status")
    return (f'<h2>FOV map</h2><p class="muted">{how}; done FOVs are shaded by decoded spots '
            f"(darker: more); hover a mark for its name.</p><p>{legend}</p>"
            '<p id="fovfind" hidden><label>find a FOV <input type="search" placeholder="name"></label> '
            f'<span id="fovfound" class="muted"></span></p>{svg}')


def failure_kinds(failures: Sequence[FailureRow]) -> list[tuple[str, list[str]]]:
    """Failures grouped by their headline with the FOV's name, index and job id taken out:
    a thousand FOVs failing the same way are one line."""
    kinds: dict[str, list[str]] = {}
    for f in failures:
        key = f.headline
        if f.fov:
            key = key.replace(f.fov, "<FOV>")
        key = re.sub(r" \(index \d+\)", "", key)
        key = re.sub(r"; job \S+", "", key)
        kinds.setdefault(key, []).append(f.fov or "merge")
    return sorted(kinds.items(), key=lambda kv: -len(kv[1]))


def _failures(r: RunReport) -> str:
    if not r.failures and not r.n_failures:
        return ""
    kinds = "".join(
        f'<tr><td class="n">{len(fovs):,}</td><td>{escape(kind)}</td>'
        f"<td>{escape(', '.join(fovs[:8]))}{' ...' if len(fovs) > 8 else ''}</td></tr>"
        for kind, fovs in failure_kinds(r.failures))
    shown = r.failures[:MAX_FAILURES]
    items = []
    for i, f in enumerate(shown):
        tail = ""
        if f.tail:
            where = f" of {escape(f.log)}" if f.log else ""
            tail = (f"<details{' open' if i < OPEN_TAILS else ''}><summary>last lines{where}</summary>"
                    f"<pre>{escape(chr(10).join(f.tail))}</pre></details>")
        elif f.log:
            tail = f'<p class="muted">log: {escape(f.log)}</p>'
        tries = f" ({f.attempts} attempts)" if f.attempts and f.attempts > 1 else ""
        items.append(f"<li>{escape(f.headline)}{tries}{tail}</li>")
    more = r.n_failures - len(shown)
    more_text = f'<p class="muted">and {more:,} more failed FOV(s)</p>' if more > 0 else ""
    return (f'<h2 id="failures">Failures ({max(r.n_failures, len(shown)):,})</h2>'
            f'<table><tr><th class="n">FOVs</th><th>error</th><th>which</th></tr>{kinds}</table>'
            f'<details{" open" if len(shown) <= OPEN_TAILS else ""}><summary>each failure with the last lines '
            f'of its log</summary><ul>{"".join(items)}</ul>{more_text}</details>')


def _targets(r: RunReport) -> str:
    if not r.targets:
        return ""
    ranked = sorted(r.targets.items(), key=lambda kv: (-int(kv[1].get("spots", 0)), kv[0]))
    top = max(1, int(ranked[0][1].get("spots", 0)))
    rows = "".join(
        f'<tr><td>{escape(t)}</td><td class="n">{int(v.get("spots", 0)):,}</td>'
        f'<td class="n">{int(v.get("features", 0)):,}</td>'
        f'<td><span class="tb" style="width:{200 * int(v.get("spots", 0)) / top:.0f}px"></span></td></tr>'
        for t, v in ranked[:TOP_TARGETS])
    more = f'<p class="muted">and {len(ranked) - TOP_TARGETS:,} more targets</p>' if len(ranked) > TOP_TARGETS else ""
    return (f"<div><h3>Spots per target ({len(ranked):,} targets)</h3><table><tr><th>target</th>"
            f'<th class="n">decoded spots</th><th class="n">features</th><th></th></tr>{rows}</table>{more}</div>')


def _spots(r: RunReport) -> str:
    out = [fov for fov in r.fovs if fov.spots is not None]
    fewest = sorted(out, key=lambda f: (f.spots, f.name))[:TOP]
    few = "".join(f'<tr><td>{escape(f.name)}</td><td class="n">{f.spots:,}</td>'
                  f'<td class="n">{_num(f.features)}</td></tr>' for f in fewest)
    spots_block = (_distribution("Spots per FOV", out, lambda f: f.spots, "spots", _num)
                   + f"<div><h3>Fewest spots</h3><table><tr><th>FOV</th><th class=\"n\">spots</th>"
                   f'<th class="n">features</th></tr>{few}</table></div>') if out else ""
    return f'<h2>Spots</h2><div class="cols">{spots_block}{_targets(r)}</div>'


def _resources(r: RunReport) -> str:
    blocks = [
        _distribution("Seconds per FOV", r.fovs, lambda f: f.seconds, "s", lambda v: f"{v:,.1f} s"),
        _distribution("Peak memory per FOV", r.fovs,
                      lambda f: None if f.peak_memory_bytes is None else f.peak_memory_bytes / 2**20,
                      "MiB", lambda v: f"{v:,.0f} MiB"),
    ]
    tried = [f for f in r.fovs if f.attempts is not None]
    extra = ""
    if tried:
        retried = sorted((f for f in tried if f.attempts > 1), key=lambda f: -f.attempts)
        names = ", ".join(f"{escape(f.name)} ({f.attempts})" for f in retried[:TOP])
        extra = (f"<p>attempts: known for {len(tried):,} FOV(s), {sum(f.attempts for f in tried):,} in all; "
                 f"{len(retried):,} FOV(s) tried more than once{': ' + names if names else ''}</p>")
    t = r.timings
    if t.get("fov_seconds_total") is not None:
        extra += (f"<p>FOV seconds in total: {float(t['fov_seconds_total']):,.1f} s over "
                  f"{_num(t.get('fov_records'))} FOV records</p>")
    return f'<h2>Time and memory</h2><div class="cols">{"".join(blocks)}</div>{extra}{_cost(r)}'


def _cost(r: RunReport) -> str:
    if not r.cost:
        return ""  # a local run: no bill in dollars, nothing to say

    def flat(prefix, value):
        if isinstance(value, dict):
            for k, v in value.items():
                yield from flat(f"{prefix}{k} " if prefix else f"{k} ", v)
        elif isinstance(value, list):
            yield prefix.strip(), escape(", ".join(map(str, value[:20])))
        elif value is None or value == "":
            return  # not known (a local run's cost): left out, never a raw None
        else:
            shown = f"{value:,.4g}" if isinstance(value, float) and math.isfinite(value) else str(value)
            yield prefix.strip(), escape(shown)

    priced = any(("usd" in k or k.startswith("cost")) and isinstance(v, int | float) and not isinstance(v, bool)
                 for k, v in r.cost.items())
    if priced:
        return "<h3>Cost estimate</h3>" + _kv(list(flat("", r.cost)))
    # a local run's bill: what it used, without Batch's attempts and retries
    used = {k: v for k, v in r.cost.items() if k not in BATCH_ONLY}
    return "<h3>Compute used</h3>" + _kv(list(flat("", used)))


BATCH_ONLY = ("attempts", "retries", "prices")
"""A bill's entries that mean something on AWS Batch only."""


def _outputs(r: RunReport) -> str:
    if not r.outputs and not r.notes:
        return ""
    items = "".join(f"<tr><th>{escape(k)}</th><td>{_link(v)}</td></tr>" for k, v in r.outputs.items())
    notes = "".join(f"<li>{escape(n)}</li>" for n in r.notes)
    return (f'<h2>Outputs</h2><table class="kv">{items}</table>'
            + (f"<p>notes:</p><ul>{notes}</ul>" if notes else ""))


def _link(path: str) -> str:
    """An output as a link relative to the page (the run folder moves and is shared whole); an
    output elsewhere (an absolute path or URL) as text."""
    text = str(path)
    if "://" in text or text.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", text):
        return _code(text)
    href = "/".join(quote(part) for part in text.split("/"))
    return f'<a href="{escape(href)}">{_code(text)}</a>'


def render_html(report: RunReport, max_marks: int = MAX_MARKS) -> str:
    """The whole page as one string."""
    body = "".join([
        _header(report), _counts(report), _next(report), tissue_sections(report), _map(report, max_marks),
        _failures(report),
        _spots(report), _resources(report), _outputs(report),
    ])
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            # nothing may be fetched: the page is read from a laptop, a bucket or an e-mail
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
            f"<title>starfish-batch run {escape(report.run_id)}</title><style>{CSS}</style></head>"
            f"<body>{body}<script>{SCRIPT}{TISSUE_SCRIPT}</script></body></html>\n")
