"""The process-fov worker: one field of view, one recipe call, one table written whole
(or, when the manifest packs several FOVs per job, that job's slice: ``process_fov.slice``).

On AWS Batch each array child runs this with ``AWS_BATCH_JOB_ARRAY_INDEX``; the local
executor runs it as a subprocess with the same variables. See docs/design.md, "Worker environment".
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
import traceback
from collections.abc import Mapping
from typing import TYPE_CHECKING

from starfish_batch import __version__
from starfish_batch.core import fov_output, resources, signals, storage
from starfish_batch.core.contract import (
    ARRAY_INDEX_VAR,
    INDEX_OFFSET_VAR,
    JOB_ID_VAR,
    MANIFEST_SHA256_VAR,
    MANIFEST_URL_VAR,
    PHASE_FD_VAR,
    PROCESS_FOV,
)
from starfish_batch.core.errors import (
    RECIPE_EXITED,
    RECIPE_RAISED,
    RECIPE_RETURNED,
    RecipeError,
    StarfishBatchError,
    StorageError,
    report,
)
from starfish_batch.core.manifest import Manifest
from starfish_batch.core.recipe_images import missing_image_message
from starfish_batch.core.records import FovRecord

if TYPE_CHECKING:  # loaded in run_one, after the skip check: a skipped FOV imports neither
    from starfish_batch.core.experiment.fov import FovView
    from starfish_batch.core.recipe import Recipe

PROG = PROCESS_FOV
_phase_fd: int | None = None


def _open_phase(env: Mapping[str, str]) -> None:
    """The local executor's phase pipe (see ``contract.PHASE_FD_VAR``), kept from the recipe's
    own child processes."""
    global _phase_fd
    try:
        _phase_fd = int(env[PHASE_FD_VAR])
        os.set_inheritable(_phase_fd, False)
    except (KeyError, ValueError, OSError):
        _phase_fd = None


def phase(name: str) -> None:
    """Tell the launcher (when it listens) how far this FOV got."""
    if _phase_fd is not None:
        try:
            os.write(_phase_fd, f"{name}\n".encode())
        except OSError:
            pass


def array_index(env: Mapping[str, str]) -> int:
    """This child's FOV index: Batch's array index (or the ``<parent>:<i>`` job id) plus the offset."""
    raw = env.get(ARRAY_INDEX_VAR)
    source = ARRAY_INDEX_VAR
    if raw is None:
        job_id = env.get(JOB_ID_VAR, "")
        raw = job_id.rsplit(":", 1)[1] if ":" in job_id else "0"
        source = JOB_ID_VAR
    offset_raw = env.get(INDEX_OFFSET_VAR, "0") or "0"
    try:
        index = int(raw)
    except ValueError:
        raise StarfishBatchError(f"{source}={raw!r} is not an integer array index") from None
    try:
        offset = int(offset_raw)
    except ValueError:
        raise StarfishBatchError(f"{INDEX_OFFSET_VAR}={offset_raw!r} is not an integer") from None
    if index < 0 or offset < 0:
        raise StarfishBatchError(f"negative FOV index: {source}={raw}, {INDEX_OFFSET_VAR}={offset_raw}")
    return index + offset


def select_fov(manifest: Manifest, index: int) -> str:
    if index >= len(manifest.fovs):
        raise StarfishBatchError(
            f"array index {index} is out of range: manifest of run {manifest.run_id} "
            f"lists {len(manifest.fovs)} FOVs (0 to {len(manifest.fovs) - 1})"
        )
    return manifest.fovs[index]


def already_done(manifest: Manifest, fov: str) -> FovRecord | None:
    """This FOV's record when its record proves its table whole for this recipe (size and
    sha256, see ``fov_output``): retries are free, and a truncated table is redone."""
    return fov_output.done_record(manifest, fov)


def _versions() -> dict[str, str]:
    import numpy  # lazy: numpy ~0.2 s
    import starfish  # lazy: import starfish takes seconds
    import xarray  # lazy: xarray ~1.7 s

    return {
        "starfish_batch": __version__,
        "starfish": starfish.__version__,
        "numpy": numpy.__version__,
        "xarray": xarray.__version__,
        "python": platform.python_version(),
    }


def with_fov_coordinate(table, fov: str):
    """The table with a ``fov`` coordinate on ``features`` and no encoding left from a read."""
    import numpy as np  # lazy: numpy ~0.2 s

    table = table.assign_coords(fov=("features", np.full(table.sizes["features"], fov, dtype=f"<U{max(1, len(fov))}")))
    table.encoding = {}
    for coord in table.coords.values():
        coord.encoding = {}
    return table


def run_one(manifest: Manifest, index: int) -> FovRecord:
    """Process ``manifest.fovs[index]``; returns its record. Raises StarfishBatchError on failure."""
    fov_name = select_fov(manifest, index)
    done = already_done(manifest, fov_name)
    if done is not None:
        print(f"{PROG}: FOV {fov_name}: output exists for this recipe, skipping", file=sys.stderr)
        phase("committed")
        return done

    # lazy: import starfish takes seconds; only the recipe path needs it
    import starfish  # noqa: F401 - imported before the clock starts: every recipe needs it

    started = time.perf_counter()
    started_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    recipe, view = _load(manifest, fov_name)
    loaded = time.perf_counter()
    phase("recipe")
    table = _run_recipe(recipe, view.fov, view.codebook, fov_name)
    computed = time.perf_counter()
    run_index = fov_output.run_index(manifest, fov_name)
    table = with_fov_coordinate(table, fov_name)
    digest, etag = _write_table(manifest, fov_name, run_index, table)
    written = time.perf_counter()
    record = _record(manifest, fov_name, run_index, table, view, digest, etag,
                     timings=(started, loaded, computed, written), started_at=started_at)
    storage.write_text(manifest.fov_url(fov_name, ".json"), record.to_json())
    phase("committed")
    return record


def _load(manifest: Manifest, fov_name: str) -> tuple[Recipe, FovView]:
    """The recipe and the FOV's view; a failure names the FOV (once) so its line says which."""
    from starfish_batch.core.experiment import open_fov  # lazy: core.experiment pulls numpy into process-fov start-up
    from starfish_batch.core.recipe import load_recipe  # lazy: core.recipe ~10 ms of process-fov's start-up

    try:
        recipe = load_recipe(manifest.recipe_url, manifest.recipe_sha256)
        view = open_fov(manifest.experiment_url, fov_name, manifest.inputs_sha256)
    except StarfishBatchError as exc:
        message = str(exc)
        if message.startswith(f"FOV {fov_name}"):
            raise
        raise type(exc)(f"FOV {fov_name}: {message}") from exc
    return recipe, view


def _run_recipe(recipe: Recipe, fov, codebook, fov_name: str):
    """The recipe's table for this FOV; whatever else it does (exits, raises, returns something
    else) becomes a RecipeError that says so, and a SIGTERM stays a stop, not the recipe's failure."""
    from starfish import DecodedIntensityTable  # lazy: import starfish takes seconds

    try:
        table = recipe.process_fov(fov, codebook)
    except signals.Stopped:  # SIGTERM (a timeout, Ctrl-C, Batch): not the recipe's doing
        raise
    except SystemExit as exc:  # sys.exit(), exit(), raise SystemExit in the recipe: no table
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        raise RecipeError(f"FOV {fov_name}: {RECIPE_EXITED} (code {code}) before returning a table") from None
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        images = missing_image_message(exc, fov)
        raise RecipeError(
            f"FOV {fov_name}: {RECIPE_RAISED} {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            + (f" ({images})" if images else "")
        ) from exc
    if not isinstance(table, DecodedIntensityTable):
        raise RecipeError(
            f"FOV {fov_name}: {RECIPE_RETURNED} {type(table).__module__}.{type(table).__name__}, "
            "expected a starfish DecodedIntensityTable"
        )
    return table


def _write_table(manifest: Manifest, fov_name: str, run_index: int, table) -> tuple[storage.Digest, str | None]:
    """Write the FOV's table, stamped with whose it is; returns its digest (what the record
    proves: this file, whole) and its ETag on S3."""
    nc_url = manifest.fov_url(fov_name, ".nc")
    with storage.staged_output(nc_url, suffix=".nc") as tmp:
        try:
            table.to_netcdf(str(tmp))
            fov_output.stamp(tmp, manifest.run_id, fov_name, run_index)  # whose table this is
            digest = storage.Digest.of_file(tmp)  # what the record proves: this file, whole
        except Exception as exc:  # netCDF says "HDF error" for a full disk: name it
            failure = storage.write_failure(nc_url, exc, tmp)
            raise StorageError(f"FOV {fov_name}: {failure}", failure.reason) from exc
    etag = storage.size_and_etag(nc_url)[1] if storage.is_s3(nc_url) else None
    return digest, etag


def _record(manifest: Manifest, fov_name: str, run_index: int, table, view: FovView, digest: storage.Digest,
            etag: str | None, *, timings: tuple[float, float, float, float], started_at: str) -> FovRecord:
    """The FOV's record: what it found, how long each step took (``timings``: started, loaded,
    computed, written) and what it used, and the digest that proves its table."""
    started, loaded, computed, written = timings
    n_features = int(table.sizes["features"])
    decoded = 0
    if n_features and "passes_thresholds" in table.coords:
        decoded = int(table.coords["passes_thresholds"].values.astype(bool).sum())
    return FovRecord(
        fov=fov_name,
        index=run_index,
        run_id=manifest.run_id,
        recipe_sha256=manifest.recipe_sha256,
        n_features=n_features,
        n_passing=decoded,
        seconds=round(written - started, 3),
        seconds_recipe=round(computed - loaded, 3),
        seconds_load=round(loaded - started, 3),
        seconds_write=round(written - computed, 3),
        tiles=view.tiles,
        tile_bytes=view.tile_bytes,
        peak_memory_bytes=resources.peak_memory_bytes(),
        cpus=resources.available_cpus(),
        started_at=started_at,
        host=platform.node(),
        versions=_versions(),
        extent=view.extent,
        nc_bytes=digest.size,
        nc_sha256=digest.sha256,
        nc_etag=etag or "",
    )


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Process one field of view of a run (or the FOVs of one job, when the manifest packs "
        "several per job). Reads RUN_MANIFEST_URL and AWS_BATCH_JOB_ARRAY_INDEX (+ FOV_INDEX_OFFSET) "
        "from the environment.",
    )
    parser.add_argument("--manifest-url", help="overrides RUN_MANIFEST_URL")
    args = parser.parse_args(argv)
    env = os.environ if env is None else env
    _open_phase(env)
    signals.sigterm_exits()
    resources.limit_threads(resources.available_cpus())
    try:
        manifest_url = args.manifest_url or env.get(MANIFEST_URL_VAR)
        if not manifest_url:
            raise StarfishBatchError("RUN_MANIFEST_URL is not set: it must point at the run's manifest.json")
        manifest = Manifest.load(manifest_url, env.get(MANIFEST_SHA256_VAR))
        if manifest.fovs_per_job > 1:  # a packed child: its slice of FOVs in this one process
            from starfish_batch.process_fov.slice import run_slice  # lazy: cycle with process_fov/slice.py

            return run_slice(manifest, array_index(env), run_one, env.get(JOB_ID_VAR, "")).exit_code
        record = run_one(manifest, array_index(env))
    except Exception as exc:  # every failure becomes one line and exit 1
        return report(PROG, exc)
    print(
        f"{PROG}: FOV {record.fov}: {record.n_features} features in {record.seconds or 0:.1f} s",
        file=sys.stderr,
    )
    return 0


def entry() -> None:
    """The ``process-fov`` command: ``main``, then the process ends at once with its status,
    whatever threads the recipe left running (the interpreter would wait for them)."""
    try:
        code = main()
    except SystemExit as exc:  # SIGTERM (signals.sigterm_exits), or argparse
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        code = 130
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed stream must not keep the process alive
            pass
    os._exit(code)


if __name__ == "__main__":
    entry()
