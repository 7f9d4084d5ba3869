"""A whole experiment on one machine, through the launcher, as a scientist runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.support.workflow import (
    EMPTY_FOV,
    EXPERIMENT_ORDER,
    FOV_NAMES,
    ISS_RECIPE,
    LAUNCHER,
    assert_same_table,
    launch,
    serial_starfish_run,
    write_experiment,
)


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    return write_experiment(tmp_path_factory.mktemp("experiment"))


@pytest.fixture(scope="module")
def serial_reference(experiment, local_run):
    """The same recipe run in this process, FOV by FOV, concatenated by starfish itself.

    BLAS sums in a different order with a different thread count, so the reference runs
    with the threads each worker had (its record says how many CPUs it saw).
    """
    root, _ = local_run
    cpus = {json.loads((root / "fovs" / f"{f}.json").read_text())["cpus"] for f in FOV_NAMES}
    assert len(cpus) == 1
    reference, tables = serial_starfish_run(str(experiment), ISS_RECIPE, cpus.pop())
    sizes = {name: t.sizes["features"] for name, t in tables.items()}
    assert sizes[EMPTY_FOV] == 0 and all(n > 0 for name, n in sizes.items() if name != EMPTY_FOV)
    return reference


@pytest.fixture(scope="module")
def local_run(experiment, tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    proc = launch("--experiment-url", experiment, "--recipe", ISS_RECIPE, "--results-url", results,
                  "--run-id", "demo-1", "--workers", "2",
                  "--ground-truth", experiment.parent / "ground_truth.csv")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return results / "demo-1", proc


def test_merged_equals_serial_starfish_concatenation(local_run, serial_reference):
    from starfish import DecodedIntensityTable  # lazy: import starfish takes seconds

    root, _ = local_run
    merged = DecodedIntensityTable.open_netcdf(str(root / "merged_decoded_fovs.nc"))
    assert isinstance(merged, DecodedIntensityTable)
    assert merged.sizes == serial_reference.sizes
    assert list(dict.fromkeys(merged.coords["fov"].values.tolist())) == [f for f in EXPERIMENT_ORDER if f != EMPTY_FOV]
    assert_same_table(merged, serial_reference)


def test_run_folder_has_every_contract_output(local_run):
    root, proc = local_run
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["fovs"] == EXPERIMENT_ORDER  # names from the experiment, in its order
    assert manifest["recipe_url"] == "recipe.py"  # relative to the run folder (a moved folder keeps it)
    assert (root / "recipe.py").read_bytes() == ISS_RECIPE.read_bytes()
    for fov in FOV_NAMES:
        record = json.loads((root / "fovs" / f"{fov}.json").read_text())
        assert record["fov"] == fov and record["seconds_recipe"] > 0
        assert (record["n_features"] == 0) == (fov == EMPTY_FOV)
    for name in ("merged_decoded_fovs.nc", "decoded_spots.csv.gz", "summary.json", "qc.png"):
        assert (root / name).stat().st_size > 0, name
    assert "recall" in proc.stdout and "merged_decoded_fovs.nc" in proc.stdout


def test_summary_and_closing_lines_carry_the_bill(local_run):
    """vCPU-hours and GB-hours of a local run are the FOV records' CPUs and peak memory over
    their seconds; no dollar figure."""
    root, proc = local_run
    bill = json.loads((root / "summary.json").read_text())["bill"]
    records = [json.loads((root / "fovs" / f"{f}.json").read_text()) for f in FOV_NAMES]
    assert bill["attempts"] == len(FOV_NAMES) and bill["retries"] == 0 and bill["cost_usd"] is None
    assert bill["vcpu_hours"] == pytest.approx(sum(r["cpus"] * r["seconds"] for r in records) / 3600, abs=1e-5)
    assert bill["gb_hours"] == pytest.approx(
        sum(r["peak_memory_bytes"] / 2**30 * r["seconds"] for r in records) / 3600, abs=1e-5)
    assert f"used: {bill['vcpu_hours']:.3f} vCPU-hours" in proc.stdout


def test_each_worker_sized_to_its_own_cores(local_run):
    """Two workers on a machine of N cores: each process sees N // 2 CPUs, not N."""
    root, _ = local_run
    cores = len(os.sched_getaffinity(0))
    seen = {json.loads((root / "fovs" / f"{f}.json").read_text())["cpus"] for f in FOV_NAMES}
    assert seen == {max(1, cores // 2)} if cores >= 2 else {1}


def test_failed_fov_then_resume_processes_only_it(experiment, tmp_path):
    """A FOV fails for a cause outside the recipe (its tiles are missing): the advice is a resume,
    which, once the tiles are back, processes that FOV alone."""
    results = tmp_path / "results"
    aside = tmp_path / "aside"
    aside.mkdir()
    tiles = sorted(experiment.parent.glob("*-b_2-*.tiff"))  # the demo names tile files after the FOV
    assert tiles
    for tile in tiles:
        shutil.move(str(tile), str(aside / tile.name))
    try:
        first = launch("--experiment-url", experiment, "--recipe", ISS_RECIPE, "--results-url", results,
                       "--run-id", "flaky")
    finally:
        for tile in tiles:
            shutil.move(str(aside / tile.name), str(tile))
    assert first.returncode == 1
    assert "FOV b_2 (index 2) failed" in first.stderr
    assert "process-fov: error: FOV b_2: " in first.stderr and "recipe raised" not in first.stderr
    assert "--resume flaky" in first.stderr
    assert "After fixing the recipe" not in first.stderr  # not the recipe's fault: no new run advised
    root = results / "flaky"
    assert not (root / "merged_decoded_fovs.nc").exists()
    done = {f: (root / "fovs" / f"{f}.nc").read_bytes() for f in FOV_NAMES if f != "b_2"}
    records = {f: (root / "fovs" / f"{f}.json").read_bytes() for f in done}
    assert not (root / "fovs" / "b_2.nc").exists()
    # no merge: the launcher's report.html still shows the failure and the command to resume
    page = (root / "report.html").read_text()
    assert 'class="state failed"' in page and "FOV b_2: " in page and "--resume flaky" in page
    assert '<rect class="m failed"' in page and page.count('<rect class="m ') == 4
    # status rewrites it: the local executor keeps no failures, so b_2 is missing, the run running
    assert launch("status", "flaky", "--results-url", results).returncode == 1
    page = (root / "report.html").read_text()
    assert 'class="state running"' in page and '<rect class="m missing"' in page

    # the command it prints runs as printed: pasted into a shell, from where the user is
    printed = first.stderr.split("process what is left:\n  ", 1)[1].splitlines()[0]
    assert printed.startswith(f"{sys.executable} {LAUNCHER} --resume flaky ")
    second = subprocess.run(printed, shell=True, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "1 of 4 FOVs left to process" in second.stderr
    resume = json.loads((root / "manifest-resume-1.json").read_text())
    assert resume["fovs"] == ["b_2"] and resume["all_fovs"] == EXPERIMENT_ORDER
    for fov in done:  # untouched: not recomputed, not rewritten
        assert (root / "fovs" / f"{fov}.nc").read_bytes() == done[fov]
        assert (root / "fovs" / f"{fov}.json").read_bytes() == records[fov]
    assert json.loads((root / "manifest.json").read_text())["fovs"] == EXPERIMENT_ORDER
    from starfish import DecodedIntensityTable  # lazy: import starfish takes seconds

    merged = DecodedIntensityTable.open_netcdf(str(root / "merged_decoded_fovs.nc"))
    assert set(np.unique(merged.coords["fov"].values)) == {f for f in FOV_NAMES if f != EMPTY_FOV}

    status = launch("status", "flaky", "--results-url", results)
    assert status.returncode == 0
    assert json.loads(status.stdout)["fovs_done"] == 4
    page = (root / "report.html").read_text()  # written again, by status, once merged
    assert 'class="state merged"' in page and '<rect class="m failed"' not in page
