"""``summary.json`` and the data of ``qc.png``: what a scientist looks at first, built in the merge pass.

A *decoded spot* is a feature that passes the decoder's thresholds (``passes_thresholds``,
when the table has it) and has a target (not empty, "nan" or "None").

``SummaryAccumulator`` takes the merged rows a block at a time and keeps only counts, plus
a bounded random sample of decoded spots (``MAX_PLOT_POINTS``, the same for 10 or 10,000
FOVs) for the map of all spots in ``qc.png``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from starfish_batch.core.records import FovRecord, Summary
from starfish_batch.merge.spots import MISSING_TARGETS

MAX_PLOT_POINTS = 60_000
SPOT_DEFINITION = "a feature with passes_thresholds true and a target (not empty, nan or None)"


class SummaryAccumulator:
    def __init__(self, fovs: list[str], seed: int = 0):
        self.fovs = list(fovs)
        self.features: dict[str, int] = {}
        self.spots: dict[str, int] = {}
        self.records: dict[str, FovRecord] = {}
        self.targets: dict[str, list[int]] = {}
        self._rng = np.random.default_rng(seed)
        self.sample: dict[str, np.ndarray] | None = None
        """x, y and target of at most ``MAX_PLOT_POINTS`` decoded spots, a uniform sample."""
        self.n_decoded = 0
        self.n_without_target = 0
        self.coordinate_kind = None

    # -- during the pass ----------------------------------------------------------------

    def add_fov(self, fov: str, n_features: int, record: FovRecord | None) -> None:
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
            for name, f, h, named in zip(uniq, feats.tolist(), hits.tolist(), has_target.tolist(), strict=True):
                if not f:
                    continue
                if not named:  # starfish's "nan" for a feature that did not decode: not a target
                    self.n_without_target += int(f)
                    continue
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
        if self.sample is not None:
            new = {k: np.concatenate([self.sample[k], v]) for k, v in new.items()}
        if len(new["key"]) > MAX_PLOT_POINTS:
            keep = np.argpartition(new["key"], MAX_PLOT_POINTS)[:MAX_PLOT_POINTS]
            new = {k: v[keep] for k, v in new.items()}
        self.sample = new

    # -- at the end ---------------------------------------------------------------------

    def summary(self, *, run_id: str, missing: list[str], merge_seconds: float,
                n_features: int, outputs: dict[str, str], notes: list[str]) -> Summary:
        merged = [f for f in self.fovs if f in self.features]
        per_fov = {}
        seconds = []
        for fov in merged:
            entry = {"features": self.features[fov], "spots": self.spots.get(fov, 0)}
            record = self.records.get(fov)
            for key in ("seconds", "peak_memory_bytes"):
                value = getattr(record, key, None)
                if isinstance(value, int | float):
                    entry[key] = value
            if isinstance(getattr(record, "extent", None), dict):
                entry["extent"] = record.extent  # where the FOV is: report.html's map
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
        return Summary(
            run_id=run_id,
            n_fovs=len(self.fovs),
            n_fovs_merged=len(merged),
            n_features=int(n_features),
            n_spots=int(sum(self.spots.get(f, 0) for f in merged)),
            n_features_without_target=self.n_without_target,
            spot_definition=SPOT_DEFINITION,
            missing_fovs=list(missing),
            fovs_without_features=[f for f in merged if self.features[f] == 0],
            fovs_without_spots=[f for f in merged if self.spots.get(f, 0) == 0],
            timings=timings,
            targets=targets,
            fovs=per_fov,
            notes=list(notes),
            outputs=dict(outputs),
        )


def write_summary(path: Path, summary: Summary) -> None:
    Path(path).write_text(summary.to_json(), encoding="utf-8")
