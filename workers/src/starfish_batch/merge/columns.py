"""The columns of the merge's tables, one vocabulary for every output.

``decoded_spots.csv.gz``, ``transcripts.parquet``, the merged netCDF and cells.h5ad use the
same names with the same units and meanings: starfish's own coordinate names, so a column
means in the CSV and the Parquet file what the coordinate of that name means in
``merged_decoded_fovs.nc``. One row per feature; a coordinate no FOV table has gives no
column (the CSV and the Parquet file then lack the same one).

===================== ==========================================================================
column                meaning
===================== ==========================================================================
``fov``               the FOV's name
``target``            the decoded gene; null (an empty CSV cell) where the feature did not
                      decode (the netCDF keeps starfish's ``"nan"`` string there)
``xc``, ``yc``, ``zc`` global stage position, in the experiment's physical unit (micrometres in
                      SpaceTx): where FOVs overlap, the same place has the same ``xc``/``yc``
``x``, ``y``, ``z``   position in pixels within the FOV's image (starfish's ``x``, ``y``, ``z``)
``spot_id``           the spot finder's id of the spot, within its FOV
``radius``            the spot's radius, pixels
``intensity``         the spot finder's intensity of the spot (the table's own ``intensity``)
``max_intensity``     the feature's largest intensity over all rounds and channels
``distance``          distance to the nearest codeword
``passes_thresholds`` the decoder's verdict, true/false
``cell_id``           ``<fov>:<cell>``, unique across FOVs (cells.h5ad's ``obs`` names); null
                      where the feature is in no cell. The one name whose values differ from
                      the netCDF's: there ``cell_id`` stays starfish's label within the FOV
                      (cells.h5ad's ``label``), so the merged table stays starfish's own
===================== ==========================================================================
"""

from __future__ import annotations

COLUMNS = ("fov", "target", "xc", "yc", "zc", "x", "y", "z", "spot_id", "radius", "intensity",
           "max_intensity", "distance", "passes_thresholds", "cell_id")
MAX_INTENSITY = "max_intensity"
"""The one column made from the intensities, not from a coordinate of the same name."""
ALWAYS = frozenset({"fov", MAX_INTENSITY})
"""Columns every table gives (``fov`` from the FOV's name when the table has no coordinate)."""
MISSING_TARGETS = frozenset({"", "nan", "none", "null"})
"""Target values that mean "not decoded" (compared lower-case): written as nulls."""


def present(coords) -> list[str]:
    """The columns, in order, of a merged table with coordinates ``coords`` (names)."""
    return [name for name in COLUMNS if name in ALWAYS or name in coords]


def undecoded(values: list[str]):
    """A boolean array: which of the distinct target values mean "not decoded"."""
    import numpy as np  # lazy: numpy ~0.2 s

    return np.array([v.strip().lower() in MISSING_TARGETS for v in values], dtype=bool)
