"""``summary.json`` and ``qc.png``: what a scientist looks at first, built during the merge pass.

A *decoded spot* is a feature that passes the decoder's thresholds (``passes_thresholds``,
when the table has it) and has a target (not empty, "nan" or "None").

``SummaryAccumulator`` takes the merged rows a block at a time and keeps only counts, plus
a bounded random sample of decoded spots (``MAX_PLOT_POINTS``, the same for 10 or 10,000
FOVs) for the map of all spots in ``qc.png``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .spots import MISSING_TARGETS

MAX_PLOT_POINTS = 60_000
TOP_TARGETS = 20
SPOT_DEFINITION = "a feature with passes_thresholds true and a target (not empty, nan or None)"


class SummaryAccumulator:
    def __init__(self, fovs: list[str], seed: int = 0):
        self.fovs = list(fovs)
        self.features: dict[str, int] = {}
        self.spots: dict[str, int] = {}
        self.records: dict[str, dict] = {}
        self.targets: dict[str, list[int]] = {}
        self._rng = np.random.default_rng(seed)
        self._sample: dict[str, np.ndarray] | None = None
        self.n_decoded = 0
        self.coordinate_kind = None

    # -- during the pass ----------------------------------------------------------------

    def add_fov(self, fov: str, n_features: int, record: dict | None) -> None:
        self.features[fov] = self.features.get(fov, 0) + int(n_features)
        self.spots.setdefault(fov, 0)
        if record:
            self.records[fov] = record

    def add_block(self, arrays: dict, fov_slices: list[tuple[str, int, int]],
                  target_factor: tuple[list[str], np.ndarray] | None,
                  bool_names: frozenset[str] | set[str] = frozenset()) -> np.ndarray:
        """Count one block; returns its decoded-spot mask."""
        n = len(next(iter(arrays.values()))) if arrays else 0
        decoded = np.ones(n, dtype=bool)
        if "passes_thresholds" in arrays:
            passes = arrays["passes_thresholds"]
            decoded &= (passes != 0) & ~np.isnan(passes) if passes.dtype.kind == "f" \
                else passes.astype(bool)
        if target_factor is not None:
            uniq, inverse = target_factor
            has_target = np.array([u.strip().lower() not in MISSING_TARGETS for u in uniq],
                                  dtype=bool)
            decoded &= has_target[inverse] if len(uniq) else np.zeros(n, dtype=bool)
            feats = np.bincount(inverse, minlength=len(uniq))
            hits = np.bincount(inverse, weights=decoded, minlength=len(uniq))
            for name, f, h in zip(uniq, feats.tolist(), hits.tolist(), strict=True):
                if f:
                    entry = self.targets.setdefault(name, [0, 0])
                    entry[0] += int(f)
                    entry[1] += int(h)
        else:
            decoded[:] = False
        cum = np.concatenate([[0], np.cumsum(decoded)])
        for fov, start, stop in fov_slices:
            self.spots[fov] = self.spots.get(fov, 0) + int(cum[stop] - cum[start])
        self._add_sample(arrays, decoded, target_factor)
        self.n_decoded += int(decoded.sum())
        return decoded

    def _add_sample(self, arrays, decoded, target_factor) -> None:
        if target_factor is None or not decoded.any():
            return
        if "xc" in arrays and "yc" in arrays:
            x, y, kind = arrays["xc"], arrays["yc"], "physical"
        elif "x" in arrays and "y" in arrays:
            x, y, kind = arrays["x"], arrays["y"], "pixel"
        else:
            return
        self.coordinate_kind = self.coordinate_kind or kind
        idx = np.flatnonzero(decoded)
        uniq, inverse = target_factor
        new = {
            "key": self._rng.random(len(idx)),
            "x": np.asarray(x[idx], dtype=np.float64),
            "y": np.asarray(y[idx], dtype=np.float64),
            "target": np.asarray(uniq, dtype=object)[inverse[idx]],
        }
        if self._sample is not None:
            new = {k: np.concatenate([self._sample[k], v]) for k, v in new.items()}
        if len(new["key"]) > MAX_PLOT_POINTS:
            keep = np.argpartition(new["key"], MAX_PLOT_POINTS)[:MAX_PLOT_POINTS]
            new = {k: v[keep] for k, v in new.items()}
        self._sample = new

    # -- at the end ---------------------------------------------------------------------

    def summary(self, *, run_id: str, missing: list[str], merge_seconds: float,
                n_features: int, outputs: dict[str, str], notes: list[str]) -> dict:
        merged = [f for f in self.fovs if f in self.features]
        per_fov = {}
        seconds = []
        for fov in merged:
            entry = {"features": self.features[fov], "spots": self.spots.get(fov, 0)}
            record = self.records.get(fov) or {}
            for key in ("seconds", "peak_memory_bytes"):
                if isinstance(record.get(key), int | float):
                    entry[key] = record[key]
            if "seconds" in entry:
                seconds.append((float(entry["seconds"]), fov))
            per_fov[fov] = entry
        targets = dict(sorted(
            ((t, {"features": v[0], "spots": v[1]}) for t, v in self.targets.items()),
            key=lambda kv: (-kv[1]["spots"], -kv[1]["features"], kv[0]),
        ))
        timings: dict[str, object] = {"merge_seconds": round(merge_seconds, 3)}
        if seconds:
            values = np.array([s for s, _ in seconds])
            slowest = max(seconds)
            timings.update({
                "fov_records": len(seconds),
                "fov_seconds_total": round(float(values.sum()), 3),
                "fov_seconds_mean": round(float(values.mean()), 3),
                "fov_seconds_median": round(float(np.median(values)), 3),
                "fov_seconds_max": round(slowest[0], 3),
                "slowest_fov": slowest[1],
            })
        return {
            "run_id": run_id,
            "n_fovs": len(self.fovs),
            "n_fovs_merged": len(merged),
            "n_features": int(n_features),
            "n_spots": int(sum(self.spots.get(f, 0) for f in merged)),
            "spot_definition": SPOT_DEFINITION,
            "missing_fovs": list(missing),
            "fovs_without_features": [f for f in merged if self.features[f] == 0],
            "fovs_without_spots": [f for f in merged if self.spots.get(f, 0) == 0],
            "timings": timings,
            "targets": targets,
            "fovs": per_fov,
            "notes": list(notes),
            "outputs": dict(outputs),
        }

    def render_qc(self, path: Path, summary: dict) -> None:
        render_qc_png(path, summary, self._sample, self.coordinate_kind)


def write_summary(path: Path, summary: dict) -> None:
    Path(path).write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")


def _import_matplotlib():
    """matplotlib's Figure and Agg canvas, without pyplot (a quarter of a second to import)."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    return matplotlib, Figure, FigureCanvasAgg


_PRELOAD: list = []


def preload_matplotlib() -> None:
    """Import matplotlib on a thread now, so that ``render_qc_png`` at the end need not.

    The merge calls it when it starts: the import overlaps the reading of the first files.
    """
    import threading

    if not _PRELOAD:
        thread = threading.Thread(target=_import_matplotlib, name="import-matplotlib",
                                  daemon=True)
        _PRELOAD.append(thread)
        thread.start()


def render_qc_png(path: Path, summary: dict, sample: dict | None,
                  coordinate_kind: str | None) -> None:
    """Three panels: decoded spots per FOV, the most frequent targets, a map of all spots.

    Fixed margins rather than a layout engine: constrained layout measures every text twice.
    """
    if _PRELOAD:
        _PRELOAD[0].join()
    matplotlib, Figure, FigureCanvasAgg = _import_matplotlib()

    fig = Figure(figsize=(19, 6), dpi=100)
    fig.subplots_adjust(left=0.045, right=0.91, bottom=0.2, top=0.86, wspace=0.28)
    FigureCanvasAgg(fig)
    ax_fov, ax_target, ax_map = fig.subplots(1, 3, width_ratios=[1.3, 0.8, 1.1])
    run = summary.get("run_id", "")
    fig.suptitle(
        f"run {run}: {summary['n_fovs_merged']} of {summary['n_fovs']} FOVs merged, "
        f"{summary['n_features']:,} features, {summary['n_spots']:,} decoded spots",
        fontsize=13,
    )

    # 1. decoded spots per FOV, in manifest order; missing FOVs marked in red
    names = [f for f in summary["fovs"]]
    counts = np.array([summary["fovs"][f]["spots"] for f in names], dtype=float)
    all_fovs_missing = summary["missing_fovs"]
    if len(names) <= 60:
        ax_fov.bar(range(len(names)), counts, color="tab:blue", width=0.8)
        ax_fov.set_xticks(range(len(names)), names, rotation=90,
                          fontsize=max(5, 9 - len(names) // 15))
    elif len(names):
        ax_fov.stairs(counts, np.arange(len(names) + 1) - 0.5, fill=True, color="tab:blue")
        ax_fov.set_xlabel("FOV (manifest order)")
    ax_fov.set_xlim(-0.5, max(len(names), 1) - 0.5)
    empty = summary["fovs_without_spots"]
    title = "decoded spots per FOV"
    if empty:
        title += f" ({len(empty)} without spots)"
    if all_fovs_missing:
        title += f", {len(all_fovs_missing)} missing"
    ax_fov.set_title(title)
    ax_fov.set_ylabel("decoded spots")
    if len(counts):
        ax_fov.axhline(float(np.median(counts)), color="0.3", lw=1, ls="--", label="median")
        ax_fov.legend(loc="upper right", fontsize=8)

    # 2. most frequent targets
    top = list(summary["targets"].items())[:TOP_TARGETS]
    if top:
        labels = [t for t, _ in top][::-1]
        values = [v["spots"] for _, v in top][::-1]
        ax_target.barh(labels, values, color="tab:green")
        ax_target.tick_params(axis="y", labelsize=8)
    ax_target.set_title(f"top {min(TOP_TARGETS, len(summary['targets']))} of "
                        f"{len(summary['targets'])} targets")
    ax_target.set_xlabel("decoded spots")

    # 3. every decoded spot (or a uniform random sample of them)
    if sample is not None and len(sample["x"]):
        top_names = [t for t, _ in top]
        palette = matplotlib.colormaps["tab20"]
        code = {t: i for i, t in enumerate(top_names)}
        idx = np.array([code.get(t, -1) for t in sample["target"]])
        other = idx < 0
        size = 2.0 if len(idx) > 20_000 else 5.0
        if other.any():
            ax_map.scatter(sample["x"][other], sample["y"][other], s=size, c="0.75",
                           linewidths=0, rasterized=True, label="other targets")
        for i, name in enumerate(top_names):
            sel = idx == i
            if sel.any():
                ax_map.scatter(sample["x"][sel], sample["y"][sel], s=size,
                               color=palette(i % 20), linewidths=0, rasterized=True, label=name)
        ax_map.set_aspect("equal", adjustable="datalim")
        ax_map.invert_yaxis()
        unit = "physical coordinates" if coordinate_kind == "physical" else "pixels"
        shown = len(idx)
        note = "" if shown >= summary["n_spots"] else f", {shown:,} of {summary['n_spots']:,} shown"
        ax_map.set_title(f"decoded spots by target ({unit}{note})")
        ax_map.set_xlabel("xc" if coordinate_kind == "physical" else "x")
        ax_map.set_ylabel("yc" if coordinate_kind == "physical" else "y")
        ax_map.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7,
                      markerscale=3 if size < 3 else 1.5, frameon=False)
    else:
        ax_map.set_title("no decoded spots")
        ax_map.set_axis_off()
    # zlib level 1: a few hundred KB more than the default, a fraction of the time
    fig.savefig(str(path), format="png", pil_kwargs={"compress_level": 1})
