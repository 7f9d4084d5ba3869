"""Start a run or resume one: the checks and writes that come before any worker starts.

Both executors share this, so a mistake (a recipe that does not compile, an experiment that
cannot be read, a results location that cannot be written) costs seconds, not a cloud round trip.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starfish_batch.core import fov_output, storage
from starfish_batch.core.contract import LAYOUT_NAME, MANIFEST_NAME, RECIPE_NAME, SUMMARY_NAME
from starfish_batch.core.errors import AlreadyExists, ExperimentError, StarfishBatchError
from starfish_batch.core.experiment import image_types, plan_inputs, plan_layout
from starfish_batch.core.manifest import Manifest, check_run_id, new_run_id, resume_manifest_url, sha256_hex
from starfish_batch.core.recipe import load_recipe
from starfish_batch.core.recipe_images import check_images
from starfish_batch.launcher import pins
from starfish_batch.launcher.claim import RunClaim
from starfish_batch.launcher.console import say
from starfish_batch.launcher.quote import spread


class NothingToDo(StarfishBatchError):
    """A resume of a run that is complete and merged: said, not an error."""


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
    claim: RunClaim | None = None,
    only: list[str] | None = None,
    sample: int | None = None,
    overlap: str | None = None,
    fovs_per_job: int = 1,
) -> tuple[Manifest, str]:
    """Check everything, then claim the run and write ``manifest.json`` and the recipe.

    ``only`` (FOV names) or ``sample`` (a count, spread over the experiment) make a partial
    run: a recipe, or a fix, tried on a few FOVs before the whole experiment.

    ``preflight(manifest)`` runs after the local checks and before anything is written
    (the Batch executor checks its queue and outputs there). ``claim`` is taken before any
    write and held by the caller while the run goes on. Returns (manifest, its URL).
    """
    experiment_url = normalize_url(experiment_url)
    recipe_url = normalize_url(recipe_path)
    results_url = storage.absolute(results_url)
    run_id = check_run_id(run_id) if run_id else new_run_id()

    recipe = load_recipe(recipe_url)
    fovs, inputs = plan_inputs(experiment_url)
    check_images(recipe.source, recipe_url, image_types(experiment_url, inputs), experiment_url)
    experiment_fovs = len(fovs)
    fovs = choose_fovs(fovs, only, sample, experiment_url)
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
        inputs_sha256=inputs,
        subset_of=experiment_fovs if len(fovs) < experiment_fovs else None,
        recipe_source=recipe_url,
        overlap=overlap,
        fovs_per_job=fovs_per_job,
    )
    layout = plan_layout(experiment_url, fovs).to_json().encode("utf-8")  # for the merge's overlap rule
    manifest.layout_sha256 = sha256_hex(layout)
    manifest.keys  # noqa: B018 - every name gets a safe storage key, or the run stops here naming it
    manifest_url = storage.join(manifest.run_root, MANIFEST_NAME)
    exists = StarfishBatchError(f"run {run_id} already exists at {manifest.run_root}; "
                                f"pick another --run-id or continue it with --resume {run_id}")
    if storage.exists(manifest_url):
        raise exists
    if preflight is not None:
        preflight(manifest)
    storage.check_writable(results_url)
    if claim is not None:
        claim.acquire(manifest.run_root, run_id)
    try:  # the manifest is the run's claim of its name: the loser writes nothing, not even the recipe
        manifest.save(manifest_url, exclusive=True)
    except AlreadyExists:
        raise exists from None
    storage.write_bytes(manifest.recipe_url, recipe.source)  # pinned by the manifest's recipe_sha256
    storage.write_bytes(storage.join(manifest.run_root, LAYOUT_NAME), layout)  # pinned by layout_sha256
    warning = pins.pin(manifest)  # what a resume will check the run's manifest against
    if warning:
        say(f"warning: {warning}")
    return manifest, manifest_url


def choose_fovs(fovs: list[str], only: list[str] | None, sample: int | None, experiment_url: str) -> list[str]:
    """The FOVs of a partial run, in the experiment's order: ``only`` by name, or ``sample`` of them
    spread over the experiment; all of them when neither is given."""
    if only:
        unknown = [name for name in only if name not in set(fovs)]
        if unknown:
            shown = ", ".join(fovs[:10]) + (f" ... ({len(fovs)} in all)" if len(fovs) > 10 else "")
            raise StarfishBatchError(
                f"--fovs: experiment {experiment_url} has no FOV named {', '.join(map(repr, unknown[:5]))}; "
                f"its FOVs are {shown}")
        wanted = set(only)
        return [fov for fov in fovs if fov in wanted]
    if sample:
        return spread(fovs, sample)
    return fovs


def partial_text(manifest: Manifest) -> str | None:
    """How a partial run is marked wherever it is shown; None for a run of the whole experiment."""
    if not manifest.subset_of:
        return None
    return f"a partial run: {len(manifest.run_fovs)} of the experiment's {manifest.subset_of} FOVs"


def load_run(results_url: str, run_id: str) -> Manifest:
    """The original manifest of an existing run."""
    check_run_id(run_id)
    url = storage.join(storage.absolute(results_url), run_id, MANIFEST_NAME)
    if not storage.exists(url):
        raise StarfishBatchError(
            f"no run {run_id} under {storage.absolute(results_url)}: {url} does not exist"
        )
    return Manifest.load(url)


def _load_launched(results_url: str, run_id: str) -> tuple[Manifest, str, str]:
    """The run's ``manifest.json``, its URL and the sha256 of the bytes parsed (read once)."""
    check_run_id(run_id)
    root = storage.join(storage.absolute(results_url), run_id)
    url = storage.join(root, MANIFEST_NAME)
    if not storage.exists(url):
        raise StarfishBatchError(f"no run {run_id} under {storage.absolute(results_url)}: {url} does not exist")
    data = storage.read_bytes(url)
    try:
        manifest = Manifest.from_json(data.decode("utf-8"), source=url)
        manifest.rebase(url)  # its paths are relative to where it is stored (a moved folder)
    except UnicodeDecodeError as exc:
        raise StarfishBatchError(f"{url} is not valid JSON: {exc}") from None
    if manifest.run_root != root:
        raise StarfishBatchError(f"cannot resume run {run_id}: {url} describes run {manifest.run_root}, "
                                 "not the run it is stored in; refusing to run it")
    return manifest, url, sha256_hex(data)


def completed_fovs(manifest: Manifest, refused: dict[str, str] | None = None) -> set[str]:
    """FOVs whose record proves their table whole (see ``fov_output``): the others are redone.
    A slot holding another FOV's output is not done, and said in ``refused`` (FOV -> one line)."""
    return fov_output.completed(manifest, refused)


def progress(manifest: Manifest) -> dict:
    """How far a run got, from what it wrote: the part of `status` both executors share."""
    refused: dict[str, str] = {}
    done = completed_fovs(manifest, refused)
    state = {
        "run_id": manifest.run_id,
        "run_root": manifest.run_root,
        "fovs": len(manifest.run_fovs),
        "fovs_done": len(done),
        "fovs_left": [f for f in manifest.run_fovs if f not in done],
        "fovs_refused": list(refused.values()),
        "merged": storage.exists(manifest.merged_url),
    }
    if manifest.subset_of:  # a partial run (--fovs): the experiment has more
        state["experiment_fovs"] = manifest.subset_of
    if state["merged"]:
        missing = merged_without(manifest)
        if missing:  # merged with --allow-partial: the merge lacks these
            state["merged_fovs_missing"] = missing
    state["partial"] = bool(manifest.subset_of or state.get("merged_fovs_missing"))
    return state


def merged_without(manifest: Manifest) -> list[str]:
    """The FOVs the run's merge left out (``missing_fovs`` of its summary.json)."""
    try:
        summary = json.loads(storage.read_bytes(storage.join(manifest.run_root, SUMMARY_NAME)))
    except (StarfishBatchError, ValueError):
        return []
    missing = summary.get("missing_fovs") if isinstance(summary, dict) else None
    return [str(f) for f in missing] if isinstance(missing, list) else []


def check_inputs(original: Manifest) -> None:
    """Refuse to resume when the experiment changed since the run started, naming what changed."""
    if not original.inputs_sha256:
        return  # a run from before digests were recorded: nothing to compare with
    try:
        fovs, _ = plan_inputs(original.experiment_url, original.inputs_sha256)
    except ExperimentError as exc:
        raise StarfishBatchError(f"cannot resume run {original.run_id}: {exc}") from None
    if fovs != list(original.run_fovs):
        added = sorted(set(fovs) - set(original.run_fovs))
        gone = sorted(set(original.run_fovs) - set(fovs))
        raise StarfishBatchError(
            f"cannot resume run {original.run_id}: experiment {original.experiment_url} now lists other FOVs "
            f"(added: {', '.join(added[:5]) or 'none'}; gone: {', '.join(gone[:5]) or 'none'}); start a new run"
        )


def resume_run(results_url: str, run_id: str, preflight=None, claim: RunClaim | None = None,
               only: list[str] | None = None, refused: dict[str, str] | None = None,
               recipe_sha256: str | None = None, overlap: str | None = None,
               fovs_per_job: int | Callable[[int], int] | None = None) -> tuple[Manifest, str]:
    """A resume manifest over the FOVs of ``run_id`` that have no output yet (of ``only``, if
    given: the sample an estimate processes).

    The recipe stored with the run is reused, and checked against the run's sha256, so a
    resumed run can never mix two recipes; the manifest itself must be the one this machine
    launched (``pins``), or name the recipe whose ``recipe_sha256`` the scientist gives; the
    experiment's documents are checked against the digests the run recorded, so it never
    mixes two experiments either. With nothing left to
    do the manifest lists no FOV and only the merge runs; a run already merged is left as is.
    FOVs whose slot holds another FOV's output are redone, and said in ``refused``.
    ``fovs_per_job`` packs its jobs (default: as the run's manifest did; a function of the
    number of FOVs left).
    """
    original, url, digest = _load_launched(results_url, run_id)
    if claim is not None:
        claim.acquire(original.run_root, run_id)
    pins.check(original, url, digest, recipe_sha256)  # the run's own recipe, as launched, or nothing runs
    load_recipe(original.recipe_url, original.recipe_sha256)
    done = completed_fovs(original, refused)
    remaining = [fov for fov in original.run_fovs if fov not in done and (only is None or fov in only)]
    if only is None and not remaining and storage.exists(original.merged_url):
        raise NothingToDo(f"run {run_id} is complete and merged: {original.merged_url}; nothing to resume")
    check_inputs(original)
    manifest = Manifest(
        run_id=original.run_id,
        experiment_url=original.experiment_url,
        recipe_url=original.recipe_url,
        recipe_sha256=original.recipe_sha256,
        results_url=original.results_url,
        fovs=remaining,
        all_fovs=list(original.run_fovs),
        inputs_sha256=dict(original.inputs_sha256),
        subset_of=original.subset_of,
        recipe_source=original.recipe_source,
        overlap=overlap or original.overlap,
        layout_sha256=original.layout_sha256,
        fovs_per_job=(original.fovs_per_job if fovs_per_job is None
                      else fovs_per_job(len(remaining)) if callable(fovs_per_job) else fovs_per_job),
    )
    if preflight is not None:
        preflight(manifest)
    url = resume_manifest_url(manifest.run_root)
    try:
        manifest.save(url, exclusive=True)
    except AlreadyExists:
        raise StarfishBatchError(f"run {run_id} is being resumed by another launcher ({url} appeared meanwhile)") \
            from None
    return manifest, url
