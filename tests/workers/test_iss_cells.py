"""The ISS recipe with cells (examples/iss_cells_recipe.py) on the demo, through the launcher:
the merge writes cells.h5ad whose counts are the decoded spots of transcripts.parquet grouped
by cell and target."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from tests.support.workflow import EMPTY_FOV, FOV_NAMES, REPO_ROOT, launch, write_experiment

CELLS_RECIPE = REPO_ROOT / "examples" / "iss_cells_recipe.py"


def test_iss_cells_recipe_on_the_demo_writes_cells_h5ad(tmp_path):
    import anndata as ad  # lazy: anndata ~4 s

    experiment = write_experiment(tmp_path / "demo")
    results = tmp_path / "results"
    proc = launch("--experiment-url", experiment, "--recipe", CELLS_RECIPE,
                  "--results-url", results, "--run-id", "cells", "--workers", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = results / "cells"

    df = pd.read_parquet(run / "transcripts.parquet")
    adata = ad.read_h5ad(run / "cells.h5ad")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["outputs"]["cells"].endswith("cells.h5ad")

    decoded = df[df["passes_thresholds"] & df["cell_id"].notna()
                 & ~df["target"].astype(str).isin(["nan", ""])]
    assert len(decoded) >= 20  # spots of the demo's non-empty FOVs fall in its nuclei's cells
    want = (decoded.assign(cell_id=decoded["cell_id"].astype(str), target=decoded["target"].astype(str))
            .groupby(["cell_id", "target"]).size().unstack(fill_value=0))
    got = adata.to_df().reindex(index=want.index, columns=want.columns)
    np.testing.assert_array_equal(got.to_numpy(), want.to_numpy())
    assert adata.X.sum() == len(decoded)
    # ids unique across FOVs: the recipe's ids restart at 0 in each FOV
    assert adata.obs_names.is_unique
    assert adata.obs.groupby("fov", observed=True)["label"].apply(lambda s: "0" in set(s)).sum() >= 2
    assert set(adata.obs["fov"]) <= set(FOV_NAMES) - {EMPTY_FOV}
    assert adata.obsm["spatial"].shape == (adata.n_obs, 2)
