"""Images that carry only their job (issue 23): what is in each built image, and the ISS and
MERFISH recipes run by the local launcher with every worker in the images, equal to the same
runs on this machine's virtualenv.

The ``e2e`` marker (`make e2e`; the e2e_state fixture builds the images or, with E2E_BUILD=0,
uses those of `make e2e-setup`). The workers run through tests.support.containers
.image_worker_venv: a python whose process-fov and merge-batch-job are `podman run IMAGE`.
"""

from __future__ import annotations

import json
import platform
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.containers import image_files, image_name, image_worker_venv
from tests.support.workflow import (
    ISS_RECIPE,
    LAUNCHER,
    REPO_ROOT,
    assert_same_table,
    launch,
    write_experiment,
)

pytestmark = pytest.mark.e2e

MERFISH_CROP = REPO_ROOT.parent / "shared" / "data" / "merfish_merlin_crop"
MERFISH_RECIPE = REPO_ROOT / "examples" / "merfish_recipe.py"
# Packages with test suites of their own in the wheels the images install.
BIG = ("numpy", "scipy", "pandas", "sklearn", "skimage", "sympy", "networkx", "matplotlib", "pyarrow",
       "h5py", "netCDF4", "xarray", "PIL", "botocore", "starfish")
SITE = re.compile(r"^/opt/venv/lib/python3\.\d+/site-packages/")


def _site_paths(paths: list[str]) -> list[str]:
    return [SITE.sub("", p) for p in paths if SITE.match(p)]


def _installed(paths: list[str]) -> set[str]:
    return {p.split("/", 1)[0] for p in paths}


@pytest.fixture(scope="module")
def contents(e2e_state: Path) -> dict[str, list[str]]:
    return {t: _site_paths(image_files(e2e_state, image_name(t))) for t in ("process-fov", "merge-batch-job")}


@pytest.mark.parametrize("target", ["process-fov", "merge-batch-job"])
def test_no_tests_pip_launcher_or_demo(contents, target):
    paths = contents[target]
    assert "starfish_batch/" in paths, paths[:20]
    suites = sorted({p for p in paths if p.split("/")[0] in BIG and p.endswith("/tests/")})
    assert not suites, f"{target}: test suites left: {suites[:10]}"
    for module in ("starfish_batch/launcher/", "starfish_batch/demo/"):
        assert module not in paths, f"{target} carries {module}"
    for tool in ("pip/", "setuptools/"):
        assert tool not in paths, f"{target} carries {tool}"


def test_process_fov_carries_only_what_a_recipe_run_imports(contents):
    installed = _installed(contents["process-fov"])
    assert {"starfish", "skimage", "scipy", "xarray", "netCDF4", "boto3", "sympy"} <= installed
    assert not installed & {"pyarrow", "matplotlib", "isal", "seaborn", "docutils"}, installed
    paths = contents["process-fov"]
    for module in ("merge/", "report/", "pricing/"):
        assert f"starfish_batch/{module}" not in paths, module
    # Bytecode only for what starts with the job: none for sympy's never-imported corners.
    assert any(p.startswith("starfish/") and p.endswith(".pyc") for p in paths)
    assert not any(p.startswith("sympy/physics/") and p.endswith(".pyc") for p in paths)


def test_merge_carries_no_image_processing(contents):
    installed = _installed(contents["merge-batch-job"])
    assert {"pyarrow", "h5py", "netCDF4", "pandas", "PIL", "boto3", "isal"} <= installed
    assert not installed & {"starfish", "skimage", "sklearn", "sympy", "matplotlib", "xarray"}, installed


def _run(python: Path | None, experiment: Path, recipe: Path, results: Path, run_id: str) -> Path:
    if python is None:  # this machine's virtualenv, as a user runs it
        proc = launch("--experiment-url", experiment, "--recipe", recipe, "--results-url", results,
                      "--run-id", run_id, "--workers", "2")
    else:
        proc = subprocess.run(
            [str(python), str(LAUNCHER), "run", "--experiment-url", str(experiment), "--recipe", str(recipe),
             "--results-url", str(results), "--run-id", run_id, "--workers", "2", "--quiet"],
            capture_output=True, text=True, timeout=900, check=False,
        )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return results / run_id


@pytest.mark.parametrize("assay", ["iss", "merfish"])
def test_recipes_run_in_the_images(e2e_state, tmp_path, assay):
    from starfish import DecodedIntensityTable  # lazy: import starfish takes seconds

    if assay == "iss":
        experiment, recipe = write_experiment(tmp_path / "experiment"), ISS_RECIPE
    else:
        if not (MERFISH_CROP / "experiment_full.json").is_file():
            pytest.skip(f"the real MERFISH crop is not on this machine ({MERFISH_CROP})")
        experiment, recipe = MERFISH_CROP / "experiment_full.json", MERFISH_RECIPE
    results = tmp_path / "results"
    results.mkdir()
    python = image_worker_venv(tmp_path / "venv", e2e_state,
                               [experiment.parent, recipe.parent, results])
    in_images = _run(python, experiment, recipe, results, f"{assay}-images")
    on_host = _run(None, experiment, recipe, tmp_path / "host", f"{assay}-host")
    # Each FOV ran in a container: its record names the container's host, not this machine.
    records = [json.loads(p.read_text()) for p in sorted((in_images / "fovs").glob("*.json"))]
    assert records and all(r["host"] != platform.node() for r in records), [r["host"] for r in records]
    merged = DecodedIntensityTable.open_netcdf(str(in_images / "merged_decoded_fovs.nc"))
    assert merged.sizes["features"] > 0
    assert_same_table(merged, DecodedIntensityTable.open_netcdf(str(on_host / "merged_decoded_fovs.nc")))
    assert (in_images / "transcripts.parquet").stat().st_size > 0
