"""Start a run or resume one: the checks and writes that come before any worker starts.

Both executors share this, so a mistake (a recipe that does not compile, an experiment that
cannot be read, a results location that cannot be written) costs seconds, not a cloud round trip.
"""

from __future__ import annotations

from starfish_batch import storage
from starfish_batch.contract import FOVS_DIR, MANIFEST_NAME, RECIPE_NAME
from starfish_batch.errors import StarfishBatchError
from starfish_batch.experiment import plan
from starfish_batch.manifest import Manifest, check_run_id, new_run_id, resume_manifest_url
from starfish_batch.recipe import load_recipe


def normalize_url(url: str) -> str:
    """Absolute local paths; ``s3://`` and ``http(s)://`` URLs unchanged."""
    if url.startswith(("s3://", "http://", "https://")):
        return url
    return storage.absolute(url)


def new_run(
    experiment_url: str,
    recipe_path: str,
    results_url: str,
    run_id: str | None = None,
    num_fovs: int | None = None,
    preflight=None,
) -> tuple[Manifest, str]:
    """Check everything, then write the recipe and ``manifest.json``; returns (manifest, its URL).

    ``preflight(manifest)`` runs after the local checks and before anything is written
    (the Batch executor checks its queue and outputs there).
    """
    experiment_url = normalize_url(experiment_url)
    recipe_url = normalize_url(recipe_path)
    results_url = storage.absolute(results_url)
    run_id = check_run_id(run_id) if run_id else new_run_id()

    recipe = load_recipe(recipe_url)
    fovs = plan(experiment_url)
    if num_fovs is not None and num_fovs != len(fovs):
        raise StarfishBatchError(
            f"--num-fovs {num_fovs} disagrees with experiment {experiment_url}, "
            f"which has {len(fovs)} FOVs; drop --num-fovs, the count is read from the experiment"
        )
    manifest = Manifest(
        run_id=run_id,
        experiment_url=experiment_url,
        recipe_url=storage.join(results_url, run_id, RECIPE_NAME),
        recipe_sha256=recipe.sha256,
        results_url=results_url,
        fovs=fovs,
    )
    manifest_url = storage.join(manifest.run_root, MANIFEST_NAME)
    if storage.exists(manifest_url):
        raise StarfishBatchError(
            f"run {run_id} already exists at {manifest.run_root}; "
            f"pick another --run-id or continue it with --resume {run_id}"
        )
    if preflight is not None:
        preflight(manifest)
    storage.check_writable(results_url)
    storage.write_bytes(manifest.recipe_url, recipe.source)
    manifest.save(manifest_url)
    return manifest, manifest_url


def load_run(results_url: str, run_id: str) -> Manifest:
    """The original manifest of an existing run."""
    check_run_id(run_id)
    url = storage.join(storage.absolute(results_url), run_id, MANIFEST_NAME)
    if not storage.exists(url):
        raise StarfishBatchError(
            f"no run {run_id} under {storage.absolute(results_url)}: {url} does not exist"
        )
    return Manifest.load(url)


def completed_fovs(manifest: Manifest) -> set[str]:
    """FOVs whose table and record are both written (one listing, not one request per FOV)."""
    names = set(storage.list_names(storage.join(manifest.run_root, FOVS_DIR)))
    return {fov for fov in manifest.run_fovs if f"{fov}.nc" in names and f"{fov}.json" in names}


def progress(manifest: Manifest) -> dict:
    """How far a run got, from what it wrote: the part of `status` both executors share."""
    done = completed_fovs(manifest)
    return {
        "run_id": manifest.run_id,
        "run_root": manifest.run_root,
        "fovs": len(manifest.run_fovs),
        "fovs_done": len(done),
        "fovs_left": [f for f in manifest.run_fovs if f not in done],
        "merged": storage.exists(manifest.merged_url),
    }


def resume_run(results_url: str, run_id: str, preflight=None,
               only: list[str] | None = None) -> tuple[Manifest, str]:
    """A resume manifest over the FOVs of ``run_id`` that have no output yet (of ``only``, if
    given: the sample an estimate processes).

    The recipe stored with the run is reused, and checked against the run's sha256, so a
    resumed run can never mix two recipes. With nothing left to do the manifest lists no
    FOV and only the merge runs.
    """
    original = load_run(results_url, run_id)
    load_recipe(original.recipe_url, original.recipe_sha256)
    done = completed_fovs(original)
    remaining = [fov for fov in original.run_fovs if fov not in done and (only is None or fov in only)]
    manifest = Manifest(
        run_id=original.run_id,
        experiment_url=original.experiment_url,
        recipe_url=original.recipe_url,
        recipe_sha256=original.recipe_sha256,
        results_url=original.results_url,
        fovs=remaining,
        all_fovs=list(original.run_fovs),
    )
    if preflight is not None:
        preflight(manifest)
    url = resume_manifest_url(manifest.run_root)
    manifest.save(url)
    return manifest, url
