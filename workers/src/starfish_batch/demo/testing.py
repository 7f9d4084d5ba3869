"""Realistic per-FOV outputs for tests and benchmarks, without running a recipe.

``synthetic_decoded_table`` builds a DecodedIntensityTable shaped like what the tutorial's
ISS pipeline gives in starfish 0.4.0 (BlobDetector then PerRoundMaxChannel): the same
coordinates with the same dtypes, including the ``z_min`` ... ``x_max`` bounding box that a
0-feature table lacks, and a ``starfish`` JSON log attribute. ``write_fov_table`` writes it
as process-fov does; ``copy_fov_output`` makes another FOV's file from a written one
quickly (byte copy, then the ``fov`` labels rewritten in place), for large benchmarks.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from starfish_batch.process_fov.main import with_fov_coordinate
from starfish_batch.core import fov_output
from starfish_batch.core import storage
from starfish_batch.core.manifest import Manifest
from starfish_batch.core.records import FovRecord

DEFAULT_TARGETS = (
    "ACTB", "GAPDH", "VIM", "HER2", "ECADH", "CD44", "KRT5", "MYC", "PTEN", "TP53",
    "BRCA1", "ESR1", "PGR", "ERBB2", "AKT1", "EGFR", "KRAS", "CDH1", "TFF1", "MKI67",
    "CCND1", "FOXA1", "GATA3", "XBP1", "TOP2A", "BIRC5", "AURKA", "MMP9", "ACTA2", "COL1A1",
)

_LOG = json.dumps({"log": [
    {"method": "WhiteTophat", "arguments": {"masking_radius": 15, "is_volume": False},
     "release tag": "Release: 0.4.0", "starfish version": "0.4.0"},
    {"method": "BlobDetector", "arguments": {"min_sigma": 1, "max_sigma": 10, "num_sigma": 30,
                                             "threshold": 0.01, "measurement_type": "mean"},
     "release tag": "Release: 0.4.0", "starfish version": "0.4.0"},
    {"method": "PerRoundMaxChannel", "arguments": {"trace_builder": "exact_match"},
     "release tag": "Release: 0.4.0", "starfish version": "0.4.0"},
]})


def synthetic_decoded_table(
    n_features: int,
    *,
    seed: int = 0,
    n_rounds: int = 4,
    n_channels: int = 4,
    targets: Sequence[str] = DEFAULT_TARGETS,
    shape: tuple[int, int] = (1044, 1390),
    origin_um: tuple[float, float] = (0.0, 0.0),
    um_per_px: float = 0.1,
    bbox: bool | None = None,
):
    """A DecodedIntensityTable of ``n_features`` spots with the coordinates of a real one.

    ``bbox`` (default: only when there are features) adds ``z_min`` ... ``x_max``, as the
    spot finder does; a real 0-feature table has none.
    """
    import pandas as pd  # lazy: pandas ~1.8 s
    from starfish import DecodedIntensityTable, IntensityTable  # lazy: import starfish takes seconds
    from starfish.core.types import SpotAttributes  # lazy: import starfish takes seconds

    rng = np.random.default_rng(seed)
    n = int(n_features)
    bbox = n > 0 if bbox is None else bbox
    y = rng.integers(0, shape[0], n)
    x = rng.integers(0, shape[1], n)
    z = np.zeros(n, dtype=np.int64)
    radius = rng.choice(np.array([1.0, 1.414, 2.0, 2.828, 4.0]), n)
    attrs = {
        "intensity": rng.random(n).astype(np.float32) * 0.1,
        "z": z, "y": y.astype(np.int64), "x": x.astype(np.int64),
        "radius": radius.astype(np.float64),
        "spot_id": np.arange(n, dtype=np.int64),
    }
    if bbox:
        r = np.ceil(radius).astype(np.int64)
        attrs.update({
            "z_min": z, "z_max": z + 1,
            "y_min": np.maximum(y - r, 0), "y_max": np.minimum(y + r, shape[0]),
            "x_min": np.maximum(x - r, 0), "x_max": np.minimum(x + r, shape[1]),
        })
    table = IntensityTable.zeros(
        SpotAttributes(pd.DataFrame(attrs)), round_labels=list(range(n_rounds)),
        ch_labels=list(range(n_channels)),
    )
    # One bright channel per round on a dim background, as an ISS trace looks.
    values = rng.random((n, n_rounds, n_channels)) * 0.01
    bright = rng.integers(0, n_channels, (n, n_rounds))
    ii, rr = np.meshgrid(np.arange(n), np.arange(n_rounds), indexing="ij")
    values[ii, rr, bright] += 0.02 + rng.random((n, n_rounds)) * 0.08
    values[rng.random((n, n_rounds, n_channels)) < 0.05] = 0.0
    table.values[...] = values
    names = np.asarray(targets, dtype=object)[rng.integers(0, len(targets), n)]
    table = DecodedIntensityTable.from_intensity_table(
        table,
        targets=("features", names.astype(str)),
        distances=("features", rng.random(n) * 0.6),
        passes_threshold=("features", rng.random(n) < 0.85),
    )
    table = table.assign_coords(
        xc=("features", origin_um[1] + x * um_per_px),
        yc=("features", origin_um[0] + y * um_per_px),
        zc=("features", np.zeros(n)),
    )
    table.attrs = {"starfish": _LOG}
    return table


def with_cells(table, n_cells: int, *, seed: int = 0, outside: float = 0.3):
    """``table`` with a ``cell_id`` coordinate as starfish's ``AssignTargets.Label`` gives it:
    the label of one of ``n_cells`` cells (``<U8`` strings, ``"1"``...), ``"nan"`` for the
    fraction ``outside`` of features in no cell. Cells are vertical bands of the image, so a
    cell's features are near each other."""
    rng = np.random.default_rng(seed)
    n = int(table.sizes["features"])
    x = table.coords["x"].values.astype(np.int64)
    width = int(x.max()) + 1 if n else 1
    labels = (x * n_cells // width + 1).astype(str)
    ids = np.where(rng.random(n) < outside, "nan", labels).astype("<U8")
    return table.assign_coords(cell_id=("features", ids))


def write_fov_table(table, path: str | Path, fov: str, run_id: str | None = None, index: int | None = None) -> None:
    """Write ``table`` as process-fov writes ``fovs/<fov>.nc`` (a ``fov`` coordinate added, and
    the run id and index when given)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with_fov_coordinate(table, fov).to_netcdf(str(path))
    if run_id is not None and index is not None:
        fov_output.stamp(path, run_id, fov, index)


def copy_fov_output(src: str | Path, dest: str | Path, fov: str) -> None:
    """``dest`` = the per-FOV file ``src`` with its ``fov`` labels set to ``fov``."""
    import netCDF4  # lazy: netCDF4 ~1.4 s

    Path(dest).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    with netCDF4.Dataset(str(dest), "r+") as ds:
        var = ds.variables["fov"]
        n = var.shape[0]
        if n:
            var[:] = np.full(n, fov, dtype=object)


def write_fake_run(results_url: str, fovs: dict[str, int], run_id: str = "run-1",
                   tables: dict | None = None, shape: tuple[int, int] = (60, 80)):
    """A run whose process-fov step is done: ``fovs/<fov>.nc`` and ``.json`` for each
    ``{fov: n_features}`` (or the table given in ``tables``), and its manifest."""
    manifest = Manifest(run_id=run_id, experiment_url="/nowhere/experiment.json",
                        recipe_url="/nowhere/recipe.py", recipe_sha256="0" * 64,
                        results_url=results_url, fovs=list(fovs))
    tables = tables or {}
    for i, (fov, n) in enumerate(fovs.items()):
        table = tables.get(fov)
        if table is None:
            table = synthetic_decoded_table(n, seed=i + 1, shape=shape,
                                            origin_um=(i * 10.0, 0.0))
        with storage.staged_output(manifest.fov_url(fov, ".nc"), ".nc") as tmp:
            write_fov_table(table, tmp, fov, run_id, i)
            digest = storage.Digest.of_file(tmp)
        record = FovRecord(fov=fov, index=i, run_id=run_id, recipe_sha256=manifest.recipe_sha256,
                           n_features=int(table.sizes["features"]), seconds=1.5 + i,
                           peak_memory_bytes=10_000_000, nc_bytes=digest.size, nc_sha256=digest.sha256,
                           extent={"xc": [i * 10.0, i * 10.0 + 8.0], "yc": [0.0, 6.0]})
        storage.write_text(manifest.fov_url(fov, ".json"), record.to_json())
    manifest.save()
    return manifest


def open_table(url: str):
    """The DecodedIntensityTable at ``url`` (local or S3), loaded in memory."""
    from starfish import DecodedIntensityTable  # lazy: import starfish takes seconds

    with storage.local_copy(url) as path:
        return DecodedIntensityTable.open_netcdf(str(path)).load()
