"""``estimate`` on the demo, locally: a sample of FOVs through the same workers as a run, a
quote, and a real run that continues it (the sample's outputs reused, never redone)."""

from __future__ import annotations

import json

import pytest

from starfish_batch.demo.experiment import write_demo_experiment
from tests.support.workflow import EXPERIMENT_ORDER, FOV_NAMES, ISS_RECIPE, launch, write_experiment

KEYS = ("fovs", "sampled_fovs", "seconds_per_fov", "peak_memory_bytes", "recommended_memory_mib",
        "recommended_vcpus", "predicted_wall_seconds", "predicted_cost_usd", "predicted_results_bytes")


@pytest.fixture(scope="module")
def quoted(tmp_path_factory):
    experiment = write_experiment(tmp_path_factory.mktemp("experiment"))
    results = tmp_path_factory.mktemp("results")
    proc = launch("estimate", "--experiment-url", experiment, "--recipe", ISS_RECIPE,
                  "--results-url", results, "--run-id", "quote-1", "--sample", "2", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return results, proc


def test_quote_is_one_json_object_with_every_key(quoted):
    results, proc = quoted
    quote = json.loads(proc.stdout)
    assert all(key in quote for key in KEYS)
    assert quote["fovs"] == len(FOV_NAMES) and quote["predicted_cost_usd"] is None
    assert quote["sampled_fovs"] == [EXPERIMENT_ORDER[0], EXPERIMENT_ORDER[-1]]  # spread: both ends
    assert quote["fovs_remaining"] == len(FOV_NAMES) - 2
    assert quote["predicted_wall_seconds"] >= quote["seconds_per_fov"] > 0
    assert quote["peak_memory_bytes"] > 50 * 2**20  # a Python worker with starfish loaded
    for fov in quote["sampled_fovs"]:
        assert (results / "quote-1" / "fovs" / f"{fov}.nc").is_file()
    assert "--resume quote-1" in proc.stderr


def test_the_run_continues_the_sample_and_its_peak_fits_the_recommendation(quoted):
    results, proc = quoted
    quote = json.loads(proc.stdout)
    root = results / "quote-1"
    sampled = {f: (root / "fovs" / f"{f}.nc").stat().st_mtime_ns for f in quote["sampled_fovs"]}
    run = launch("--resume", "quote-1", "--results-url", results)
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"{len(FOV_NAMES) - 2} of {len(FOV_NAMES)} FOVs left to process" in run.stderr
    assert {f: (root / "fovs" / f"{f}.nc").stat().st_mtime_ns for f in sampled} == sampled  # reused
    peaks = [json.loads((root / "fovs" / f"{f}.json").read_text())["peak_memory_bytes"] for f in FOV_NAMES]
    assert quote["recommended_memory_mib"] * 2**20 >= max(peaks)
    assert (root / "merged_decoded_fovs.nc").is_file()


def test_a_recipe_that_fails_gives_no_quote(tmp_path):
    experiment = write_experiment(tmp_path / "experiment")
    recipe = tmp_path / "recipe.py"
    recipe.write_text("def process_fov(fov, codebook):\n    raise ValueError('broken recipe')\n")
    proc = launch("estimate", "--experiment-url", experiment, "--recipe", recipe,
                  "--results-url", tmp_path / "results", "--sample", "1", "--json")
    assert proc.returncode == 1 and proc.stdout == ""
    assert "broken recipe" in proc.stderr and "no estimate" in proc.stderr


def _mixed_sizes_experiment(root):
    """One experiment whose FOVs differ in size: three small FOVs and three four times larger,
    each half written by the demo writer, joined by collection documents that name both."""
    halves = {"small": (["A1", "A2", "A3"], (64, 64)), "large": (["B1", "B2", "B3"], (128, 128))}
    for folder, (names, shape) in halves.items():
        write_demo_experiment(root / folder, fov_names=names, shape=shape, n_spots=8, seed=3)
    small = json.loads((root / "small" / "experiment.json").read_text())
    for ref in small["images"].values():
        contents = {}
        for folder in halves:
            collection = json.loads((root / folder / ref).read_text())
            contents.update({name: f"{folder}/{path}" for name, path in collection["contents"].items()})
        (root / ref).write_text(json.dumps({"version": "0.1.0", "extras": None, "contents": contents}))
    (root / "experiment.json").write_text(json.dumps({**small, "codebook": "small/codebook.json"}))
    return root / "experiment.json"


def test_an_estimate_over_fovs_of_different_sizes_brackets_the_run_it_predicts(tmp_path):
    experiment = _mixed_sizes_experiment(tmp_path / "exp")
    results = tmp_path / "results"
    proc = launch("estimate", "--experiment-url", experiment, "--recipe", ISS_RECIPE, "--results-url", results,
                  "--run-id", "mixed", "--sample", "3", "--json", "--workers", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    quote = json.loads(proc.stdout)
    assert quote["fovs"] == 6 and {f[0] for f in quote["sampled_fovs"]} == {"A", "B"}  # both sizes sampled
    run = launch("--resume", "mixed", "--results-url", results, "--workers", "1")
    assert run.returncode == 0, run.stderr[-3000:]
    records = [json.loads(p.read_text()) for p in (results / "mixed" / "fovs").glob("*.json")]
    assert len(records) == 6
    seconds = sorted(r["seconds"] for r in records)  # load + recipe + write, inside each worker
    # the quote's time per FOV (a worker's whole life, with its imports) brackets the FOVs' own
    # times; the recommended memory holds every FOV, the large ones that were not sampled too
    assert seconds[0] <= quote["seconds_per_fov"] <= seconds[-1] + 15
    assert quote["recommended_memory_mib"] * 2**20 >= max(r["peak_memory_bytes"] for r in records)
    assert max(r["tile_bytes"] for r in records) >= 3 * min(r["tile_bytes"] for r in records)
