"""``spatialdata.zarr``: the transcripts as a SpatialData points element, and the cells as its table.

Written after the pass, from ``transcripts.parquet`` read back in partitions by dask (so memory
stays that of a partition) and the cells' AnnData, only where the optional ``spatialdata``
package is installed (``pip install 'starfish-batch[spatial]'``): it resolves beside
starfish 0.4.0's pins, but brings dask, numba, geopandas and ome-zarr, which most runs do not
need. ``spatialdata.read_zarr`` opens it:

- ``points["transcripts"]``: every column of transcripts.parquet, its stage position
  ``xc``/``yc`` (and ``zc``) as the coordinates, which spatialdata names ``x``/``y``/``z``
  (the pixel columns ``x``/``y``/``z`` are then ``x_pixel``/``y_pixel``/``z_pixel``; pixels
  are the coordinates only where the tables have no stage position), ``target`` the feature
  key, in the global physical frame of the experiment (the ``global`` coordinate system);
- ``tables["cells"]``: cells.h5ad's AnnData, when there is one.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

POINTS_NAME = "transcripts"
TABLE_NAME = "cells"


def available() -> bool:
    """Whether ``spatialdata`` is installed (its import is slow: only looked up here)."""
    return importlib.util.find_spec("spatialdata") is not None


def write_spatialdata(dest: Path, transcripts: Path, cells: Path | None = None) -> None:
    """Write the store at ``dest`` (a path that does not exist yet) from the Parquet file and
    the cells' h5ad file."""
    import anndata as ad  # lazy: anndata ~4 s
    import dask.dataframe as dd  # lazy: dask (heavy)
    from spatialdata import SpatialData  # lazy: spatialdata (optional, heavy)
    from spatialdata.models import PointsModel, TableModel  # lazy: spatialdata (optional, heavy)

    frame = dd.read_parquet(str(transcripts))
    # Parquet's dictionary columns come back as categoricals of unknown categories, which
    # dask cannot write again: fov and cell_id become strings (cell_id null outside cells),
    # target a categorical whose categories are read first (one pass over the column)
    for name in ("fov", "cell_id"):
        if name in frame.columns:
            frame[name] = frame[name].astype("string")
    frame["target"] = frame["target"].astype(str).astype("category").cat.as_known()
    if "xc" in frame.columns and "yc" in frame.columns:  # the stage position is spatialdata's x, y
        frame = frame.rename(columns={a: f"{a}_pixel" for a in ("x", "y", "z") if a in frame.columns})
        coordinates = {a: f"{a}c" for a in ("x", "y", "z") if f"{a}c" in frame.columns}
    else:  # no physical position: pixels
        coordinates = {a: a for a in ("x", "y", "z") if a in frame.columns}
    points = PointsModel.parse(frame, coordinates=coordinates, feature_key="target")
    tables = {TABLE_NAME: TableModel.parse(ad.read_h5ad(cells))} if cells is not None else {}
    SpatialData(points={POINTS_NAME: points}, tables=tables).write(str(dest))
