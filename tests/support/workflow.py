"""Helpers shared by the workflow tests: a small demo experiment and recipes that fail on cue."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from unittest import mock

from starfish_batch.core.recipe import load_recipe
from starfish_batch.demo.experiment import write_demo_experiment
from starfish_batch.process_fov.main import with_fov_coordinate
from tests.support import REPO_ROOT  # noqa: F401 - re-exported

LAUNCHER = REPO_ROOT / "scripts" / "starfish_workflow.py"
ISS_RECIPE = REPO_ROOT / "examples" / "iss_recipe.py"
FOV_NAMES = ["A1", "b_2", "C-3", "well7.site1"]
EMPTY_FOV = "C-3"
EXPERIMENT_ORDER = sorted(FOV_NAMES)  # starfish lists FOVs sorted by name: array index i is this[i]

# Appended to the ISS recipe: fails for the FOVs named in $FAIL_FOVS, so one recipe file
# (one sha256) can fail in a first run and succeed in its resume.
FAILING_WRAPPER = '''

_iss_process_fov = process_fov


def process_fov(fov, codebook):
    import os

    if fov.name in os.environ.get("FAIL_FOVS", "").split(","):
        raise RuntimeError(f"synthetic failure in {fov.name}")
    return _iss_process_fov(fov, codebook)
'''


def write_experiment(out_dir: Path) -> Path:
    return write_demo_experiment(
        out_dir, fov_names=FOV_NAMES, empty_fovs=[EMPTY_FOV], shape=(128, 128), n_spots=20, seed=3
    )


def recipe_with(tmp_path: Path, suffix: str, name: str = "recipe.py") -> Path:
    path = tmp_path / name
    path.write_text(ISS_RECIPE.read_text() + suffix)
    return path


def launch(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    """The launcher as a user runs it: a separate process; returns the CompletedProcess."""
    return subprocess.run(
        [sys.executable, str(LAUNCHER), *map(str, args), "--quiet"],
        env={**os.environ, **(env or {})}, cwd=cwd, capture_output=True, text=True, timeout=600,
    )


def upload_tree(s3, root: Path, bucket: str, prefix: str) -> None:
    """Every file under ``root`` to ``s3://bucket/prefix/`` (an experiment, for the S3 tests)."""
    for path in sorted(root.rglob("*")):
        if path.is_file():
            s3.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(root)}")


def demo_experiment_in_s3(s3, root: Path, fovs: list[str], data_bucket: str,
                          results_bucket: str | None = None) -> Path:
    """Both buckets (the results bucket unless None: Terraform may create it), and a small demo
    experiment written under ``root`` and uploaded to ``s3://<data_bucket>/exp/`` (the end-to-end
    tests' input); returns the local experiment.json."""
    for bucket in (data_bucket, results_bucket):
        if bucket:
            s3.create_bucket(Bucket=bucket)
    experiment = write_demo_experiment(root, fov_names=fovs, shape=(96, 96), n_spots=12, seed=5)
    upload_tree(s3, experiment.parent, data_bucket, "exp")
    return experiment


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes: to check that nothing written was lost."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def provenance(attrs: dict) -> list:
    """The steps of starfish's provenance log, without what changes per process: function
    addresses, and the versions of whatever modules that process happened to have loaded."""
    log = json.loads(attrs["starfish"])["log"]
    return [(step["method"], re.sub(r" at 0x[0-9a-f]+", "", json.dumps(step["arguments"], sort_keys=True)))
            for step in log]


def assert_same_table(merged, reference) -> None:
    """Value for value, dtype for dtype, the same table and the same provenance steps."""
    import xarray as xr  # lazy: xarray ~1.7 s

    assert merged.sizes == reference.sizes
    for name, coord in reference.coords.items():
        assert merged.coords[name].dtype == coord.dtype, name
    assert merged.dtype == reference.dtype
    assert provenance(merged.attrs) == provenance(reference.attrs)
    assert merged.attrs.keys() == reference.attrs.keys()
    merged, reference = merged.copy(), reference.copy()
    merged.attrs = reference.attrs = {}
    xr.testing.assert_identical(xr.DataArray(merged), xr.DataArray(reference))


def serial_starfish_run(experiment_url: str, recipe_path, cpus: int):
    """The recipe over every FOV in this process, through Experiment.from_json, concatenated by
    starfish itself, with the threads a worker had (BLAS sums differ with the thread count).

    starfish's filters run each tile in a thread pool of os.cpu_count() threads, whose first
    ``.sel`` calls on a new image stack race to build pandas' index lookup (``KeyError: 0``, "not
    all values found in index 'c'": seen in this test process under load). One thread here: each
    tile's result does not depend on the pool's size."""
    from starfish import DecodedIntensityTable, Experiment  # lazy: import starfish takes seconds
    from threadpoolctl import threadpool_limits  # lazy: threadpoolctl ~25 ms

    recipe = load_recipe(str(recipe_path))
    exp = Experiment.from_json(experiment_url)
    with threadpool_limits(cpus), mock.patch("os.cpu_count", return_value=1):
        tables = {fov.name: with_fov_coordinate(recipe.process_fov(fov, exp.codebook), fov.name)
                  for fov in exp.fovs()}
    nonempty = [t for t in tables.values() if t.sizes["features"]]
    return DecodedIntensityTable.concatenate_intensity_tables(nonempty), tables
