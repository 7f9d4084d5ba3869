"""report.html's tissue, cells and decoding-QC sections, from the merge's tissue payload
(``starfish_batch.merge.tissue``) and the run's counts.

Each figure is a PNG drawn here (readable without JavaScript); the tissue map's data is also
embedded as JSON (``<script type="application/json" id="tissue-data">``) for the page's script,
which draws it again on a canvas with a gene picker, a density view and zoom into a FOV
(:mod:`.tissue_js`). Nothing is fetched.
"""

from __future__ import annotations

import json
import re
from html import escape

import numpy as np

from starfish_batch.core.report.model import RunReport
from starfish_batch.core.report.payload import b64, unb64
from starfish_batch.core.report.raster import OTHER, PALETTE, Canvas, data_uri, ramp, ramp_css
from starfish_batch.core.report.svg import histogram

MAP_WIDTH = 860
MAP_HEIGHT = 560
TOP_GENES = 12
"""Genes coloured on the picture without JavaScript (the palette's length), and ticked first."""
PICKER_GENES = 30
BLANK = re.compile(r"^(blank|empty|neg|negative|negcontrol|unused|unassigned)([ _-]?\d*|[ _-].*)$", re.I)
"""Codebook targets that are blank (empty, negative-control) barcodes."""
MAX_ZERO_LISTED = 200


def decode_points(t: dict) -> dict[str, np.ndarray]:
    """The payload's points as stage coordinates: ``x``, ``y`` (float) and ``gene`` (index)."""
    p = t["points"]
    x0, x1, y0, y1 = t["box"]
    x = x0 + unb64(p["x"], np.uint16) / 65535 * (x1 - x0)
    y = y0 + unb64(p["y"], np.uint16) / 65535 * (y1 - y0)
    starts = p["gene_start"]
    gene = np.repeat(np.arange(len(starts) - 1), np.diff(starts))
    return {"x": x, "y": y, "gene": gene}


def is_blank(name: str) -> bool:
    return bool(BLANK.match(name.strip()))


def top_genes(t: dict, n: int) -> list[int]:
    counts = t.get("gene_counts") or []
    return sorted(range(len(counts)), key=lambda i: (-counts[i], t["genes"][i]))[:n]


def _img(uri: str, alt: str, ident: str = "", w: int = 0, h: int = 0) -> str:
    extra = f' id="{ident}"' if ident else ""
    size = f' width="{w}" height="{h}"' if w else ""
    return f'<img{extra} class="fig" src="{uri}" alt="{escape(alt)}"{size}>'


def _extents(r: RunReport, t: dict) -> dict[str, list[float]]:
    found = {f.name: list(f.extent) for f in r.fovs if f.extent is not None}
    found.update(t.get("fov_extents") or {})
    return found


def tissue_picture(r: RunReport, t: dict) -> tuple[str, Canvas]:
    c = Canvas(t["box"], MAP_WIDTH, MAP_HEIGHT)
    if not t.get("exact") and t.get("density"):
        d = t["density"]
        c.grid(unb64(d["counts"], np.uint16), d["w"], d["h"], d["side"])
    else:
        pts = decode_points(t)
        top = top_genes(t, TOP_GENES)
        colour = np.tile(np.array(OTHER, np.uint8), (len(t["genes"]) + 1, 1))
        for k, g in enumerate(top):
            colour[g] = PALETTE[k]
        # the others first, the top genes over them (the commonest last)
        rank = np.full(len(t["genes"]) + 1, -1)
        rank[top] = np.arange(len(top))[::-1]
        order = np.argsort(rank[pts["gene"]], kind="stable")
        c.dots(pts["x"][order], pts["y"][order], colour[pts["gene"][order]], size=3 if len(order) < 20_000 else 2)
    c.rects(list(_extents(r, t).values()), None, (60, 60, 60))
    return data_uri(c.rgb), c


def section_tissue(r: RunReport) -> str:
    t = r.tissue
    if not t or not t.get("box"):
        why = ("no decoded transcript has a position" if t else
               "no tissue data for this run: the merge has not run, an older version merged it, or it "
               "could not collect them (its log says why)")
        return f'<h2 id="tissue-h">Tissue</h2><p class="muted">{why}.</p>'
    uri, c = tissue_picture(r, t)
    genes, counts = t["genes"], t["gene_counts"]
    n = t["n_transcripts"]
    unit = "µm" if t.get("kind") == "physical" else "pixels"
    x0, x1, y0, y1 = t["box"]
    if t.get("exact"):
        how = (f"every one of the {n:,} decoded transcripts at its stage position, coloured by gene "
               f"(the {min(TOP_GENES, len(genes))} commonest; the others grey)")
    else:
        how = (f"{n:,} decoded transcripts: the picture is their density (binned in the merge, log scale); "
               f"with JavaScript, zoom shows a sample of them, every transcript of a gene up to "
               f"{t.get('per_gene', 0):,} per gene")
    legend = "".join(
        f'<span class="sw" style="background:rgb{tuple(int(v) for v in PALETTE[k])}"></span>{escape(genes[g])} '
        f'({counts[g]:,})' for k, g in enumerate(top_genes(t, TOP_GENES))) if t.get("exact") else ""
    options = "".join(f'<option value="{escape(g)}">' for g in genes)
    picks = "".join(
        f'<label class="pick"><input type="checkbox" value="{escape(genes[g])}"> {escape(genes[g])} '
        f'<span class="muted">{counts[g]:,}</span></label>' for g in top_genes(t, PICKER_GENES))
    # no "<" inside the script element: "</script>" or "<!--" in a gene's name cannot end it
    data = json.dumps(_page_data(r, t), separators=(",", ":")).replace("<", "\\u003c")
    return (
        f'<h2 id="tissue-h">Tissue</h2><p class="muted">{how}; FOV outlines in grey. x {x0:,.6g} to {x1:,.6g}, '
        f'y {y0:,.6g} to {y1:,.6g} ({unit}, y down).</p><p>{legend}</p>'
        '<div id="tissue-controls" hidden><p><label>view <select id="tissue-mode">'
        '<option value="genes">transcripts by gene</option><option value="density">density</option></select></label> '
        '<label>add a gene <input id="tissue-search" list="tissue-genes" placeholder="gene name"></label>'
        f'<datalist id="tissue-genes">{options}</datalist> <button id="tissue-clear" type="button">all genes</button> '
        '<button id="tissue-reset" type="button">whole tissue</button> '
        '<span id="tissue-status" class="muted"></span></p>'
        f'<details open><summary>top genes (tick several)</summary><div id="tissue-picks">{picks}</div></details>'
        '<p class="muted">click a FOV to zoom into it and see its transcripts.</p></div>'
        f'<div class="map">{_img(uri, "decoded transcripts on the stage", "tissue-img", c.w, c.h)}'
        f'<canvas id="tissue-canvas" width="{c.w}" height="{c.h}" hidden></canvas></div>'
        f'<script type="application/json" id="tissue-data">{data}</script>')


def _page_data(r: RunReport, t: dict) -> dict:
    """What the script needs: the payload without the QC and cells arrays, with the FOV extents."""
    keep = {k: v for k, v in t.items() if k not in ("qc", "cells", "fov_extents")}
    extents = _extents(r, t)
    keep["fov_names"] = list(extents)
    keep["fov_boxes"] = b64(np.array(list(extents.values()), np.float32).reshape(-1))
    keep["palette"] = [list(map(int, p)) for p in PALETTE]
    keep["top"] = top_genes(t, TOP_GENES)
    return keep


def _hist_block(title: str, values, unit: str, what: str) -> str:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    text = ""
    if len(values):
        text = f'<p class="muted">median {float(np.median(values)):,.3g}, max {float(values.max()):,.3g}</p>'
    return f"<div><h3>{escape(title)}</h3>{histogram(values, unit, what=what)}{text}</div>"


def section_cells(r: RunReport) -> str:
    cells = (r.tissue or {}).get("cells")
    if not cells:
        return ""
    per_fov = cells["per_fov"]
    spots = unb64(cells["spots"], np.uint32)
    blocks = [_hist_block("Cells per FOV", per_fov, "cells", "FOVs"),
              _hist_block("Transcripts per cell", spots, "transcripts", "cells")]
    picture = ""
    cent = cells.get("centroids")
    if cent and r.tissue.get("box"):
        t = r.tissue
        x0, x1, y0, y1 = t["box"]
        c = Canvas(t["box"], MAP_WIDTH, MAP_HEIGHT)
        c.rects(list(_extents(r, t).values()), None, (190, 190, 190))
        cx = x0 + unb64(cent["x"], np.uint16) / 65535 * (x1 - x0)
        cy = y0 + unb64(cent["y"], np.uint16) / 65535 * (y1 - y0)
        cs = unb64(cent["spots"], np.uint32).astype(np.float64)
        top = float(np.percentile(cs, 95)) if len(cs) else 1.0

        order = np.argsort(cs, kind="stable")
        size = 6 if len(cs) < 2000 else 4 if len(cs) < 20_000 else 2
        c.dots(cx[order], cy[order], ramp(0.2 + 0.8 * cs[order] / (top or 1.0)), size=size)
        scale = "".join(f'<span class="sw" style="background:{ramp_css(0.2 + 0.8 * f)}"></span>{top * f:,.0f}'
                        for f in (0, 0.25, 0.5, 0.75, 1))
        picture = (f'<p class="muted">each cell\'s centroid, coloured by its decoded transcripts '
                   f'({scale}{" or more" if len(cs) else ""})</p>'
                   + _img(data_uri(c.rgb), "cell centroids coloured by transcript count", "cells-img", c.w, c.h))
    return (f'<h2 id="cells">Cells</h2><p>{cells["n"]:,} cells in {sum(1 for v in per_fov if v):,} FOVs; '
            f'{int(spots.sum()):,} decoded transcripts in cells</p>{picture}<div class="cols">{"".join(blocks)}</div>')


def decoding_figures(r: RunReport) -> dict:
    """The numbers of the decoding-QC section (also for tests): blanks, FDR, zero-count genes."""
    counts = {name: int((v or {}).get("spots") or 0) for name, v in r.targets.items()}
    total = r.n_spots if r.n_spots is not None else sum(counts.values())
    out: dict = {"total": total}
    if r.codebook is not None and r.n_spots is not None:  # counts exist once the merge has run
        blanks = [g for g in r.codebook if is_blank(g)]
        panel = [g for g in r.codebook if not is_blank(g)]
        out["zero"] = [g for g in panel if not counts.get(g)]
        out["panel_n"], out["empty_n"] = len(panel), len(blanks)
        if blanks:
            empties = sum(counts.get(g, 0) for g in blanks)
            out["empties"] = empties
            out["blank_rate"] = empties / total if total else None
            out["fdr"] = (empties / total) * (len(panel) / len(blanks)) if total else None
    return out


def _fraction_picture(r: RunReport) -> str:
    placed = [f for f in r.fovs if f.extent is not None and f.features]
    if not placed:
        return ""
    box = [min(f.extent[0] for f in placed), max(f.extent[1] for f in placed),
           min(f.extent[2] for f in placed), max(f.extent[3] for f in placed)]
    if box[1] <= box[0] or box[3] <= box[2]:
        return ""
    c = Canvas(box, 520, 360)

    colours = ramp(np.array([(f.spots or 0) / f.features for f in placed]))
    c.rects([f.extent for f in placed], colours, (255, 255, 255))
    scale = "".join(f'<span class="sw" style="background:{ramp_css(v)}"></span>{v:.0%}' for v in (0, .25, .5, .75, 1))
    return (f'<div><h3>Decoded fraction per FOV</h3><p class="muted">decoded spots / features ({scale})</p>'
            + _img(data_uri(c.rgb), "decoded fraction per FOV", "fraction-img", c.w, c.h) + "</div>")


def section_decoding(r: RunReport) -> str:
    figs = decoding_figures(r)
    parts = []
    qc = (r.tissue or {}).get("qc")
    if qc and qc.get("n"):
        distance = unb64(qc["distance"], np.float32)
        intensity = unb64(qc["intensity"], np.float32)
        decoded = unb64(qc["decoded"], np.uint8).astype(bool)
        what = "features" if qc["n"] >= (r.tissue.get("n_features") or 0) else "features (a uniform sample)"
        if qc.get("has_distance"):
            parts.append(_hist_block("Decoding distance, decoded spots", distance[decoded], "", what))
            parts.append(_hist_block("Decoding distance, not decoded", distance[~decoded], "", what))
        parts.append(_hist_block("Intensity (largest over rounds and channels)", intensity, "", what))
    parts.append(_fraction_picture(r))
    lines = []
    if "zero" in figs:
        zero = figs["zero"]
        listed = ", ".join(escape(g) for g in zero[:MAX_ZERO_LISTED]) + (" ..." if len(zero) > MAX_ZERO_LISTED else "")
        lines.append(f"<p>codebook coverage: {figs['panel_n'] - len(zero):,} of {figs['panel_n']:,} genes have "
                     f"decoded transcripts{'; none: ' + listed if zero else ''}</p>")
        if figs.get("empty_n"):
            rate, fdr = figs.get("blank_rate"), figs.get("fdr")
            shown = "-" if rate is None else f"{rate:.2%}"
            lines.append(
                f"<p>blank barcodes: {figs['empty_n']:,} in the codebook, {figs['empties']:,} decoded transcripts "
                f"on them (blank rate {shown}); false-discovery estimate (empties/total) x (panel_n/empty_n) = "
                f"{'-' if fdr is None else f'{fdr:.2%}'} (iss-nf's; panel_n {figs['panel_n']:,} genes, "
                f"empty_n {figs['empty_n']:,} blanks)</p>")
        else:
            lines.append('<p class="muted">the codebook has no blank barcodes: no false-discovery estimate</p>')
    elif r.n_spots is None:
        lines.append('<p class="muted">the merge has not run: no decoding figures yet</p>')
    else:
        lines.append('<p class="muted">codebook not read: coverage and blanks unknown</p>')
    return f'<h2 id="decoding">Decoding QC</h2>{"".join(lines)}<div class="cols">{"".join(parts)}</div>'


def sections(r: RunReport) -> str:
    return section_tissue(r) + section_cells(r) + section_decoding(r)


