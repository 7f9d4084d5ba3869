"""What the scientist launched, kept on the scientist's own machine, so a resume never runs a
recipe someone else put in the run.

A run's ``manifest.json`` and ``recipe.py`` live in shared storage, where others may be able
to write (a lab-wide bucket, a shared disk; docs/security.md). The manifest pins the recipe by
its sha256, but a rewritten manifest can pin a rewritten recipe. So at launch the launcher
also writes, under the scientist's own state folder, the sha256 of the manifest it wrote
(and of its recipe, which the launch prints). ``--resume`` reads the run's manifest, refuses
one whose recipe is not the run's own stored copy, and refuses one whose digest is not the
pinned one (or, from another machine, not the ``--recipe-sha256`` the scientist gives), in one
line, before running anything.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from starfish_batch.core import storage
from starfish_batch.core.contract import RECIPE_NAME
from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.core.manifest import Manifest

STATE_DIR_VAR = "STARFISH_BATCH_STATE_DIR"
MIN_PREFIX = 12
"""Hex digits of ``--recipe-sha256`` needed at least (the launch prints 16)."""


def state_dir() -> Path:
    """``$STARFISH_BATCH_STATE_DIR``, else ``$XDG_STATE_HOME/starfish-batch``, else
    ``~/.local/state/starfish-batch``: the scientist's, never the run's storage."""
    if os.environ.get(STATE_DIR_VAR):
        return Path(os.environ[STATE_DIR_VAR])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "starfish-batch"


def _pin_path(run_root: str) -> Path:
    return state_dir() / "runs" / f"{hashlib.sha256(run_root.encode()).hexdigest()[:32]}.json"


def _launched_path(manifest_sha256: str) -> Path:
    """The same pin found by the manifest's digest: a manifest holds no path of its folder
    (manifest.py), so a run folder moved or shared since launch keeps it."""
    return state_dir() / "manifests" / f"{manifest_sha256}.json"


def pin(manifest: Manifest) -> str | None:
    """Remember the launched manifest's digest; returns a warning when it cannot be written."""
    body = {"run_root": manifest.run_root, "manifest_sha256": manifest.sha256,
            "recipe_sha256": manifest.recipe_sha256}
    try:
        for path in (_pin_path(manifest.run_root), _launched_path(manifest.sha256)):
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps(body) + "\n")
            os.replace(tmp, path)
    except OSError as exc:
        return (f"cannot remember run {manifest.run_id} in {path.parent} ({exc.strerror or exc}): "
                f"a resume will ask for --recipe-sha256 {manifest.recipe_sha256[:16]}")
    return None


def pinned(run_root: str) -> dict | None:
    try:
        doc = json.loads(_pin_path(run_root).read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("run_root") == run_root else None


def check(manifest: Manifest, manifest_url: str, manifest_sha256: str, expected_recipe: str | None) -> None:
    """Refuse to resume a run whose manifest is not the one launched (one line, nothing run)."""
    own = storage.join(manifest.run_root, RECIPE_NAME)
    if manifest.recipe_url != own:
        raise StarfishBatchError(
            f"cannot resume run {manifest.run_id}: {manifest_url} names recipe {manifest.recipe_url}, not the "
            f"run's own copy {own}; someone rewrote it: refusing to run it"
        )
    if expected_recipe:
        want = expected_recipe.strip().lower()
        if len(want) < MIN_PREFIX or any(c not in "0123456789abcdef" for c in want):
            raise StarfishBatchError(f"--recipe-sha256 {expected_recipe!r}: give at least {MIN_PREFIX} hex digits "
                                     "of the recipe sha256 printed at launch")
        if not manifest.recipe_sha256.startswith(want):
            raise StarfishBatchError(
                f"cannot resume run {manifest.run_id}: its manifest pins recipe sha256 "
                f"{manifest.recipe_sha256[:16]}..., not the {want[:16]}... you launched; refusing to run it"
            )
        return
    launched = pinned(manifest.run_root)
    if launched is None and _launched_path(manifest_sha256).is_file():
        return  # this very manifest was launched here, from a folder that has moved since
    if launched is None:
        raise StarfishBatchError(
            f"cannot resume run {manifest.run_id}: it was not launched from this account on this machine, so its "
            f"recipe cannot be checked against what you launched; if the recipe sha256 printed at launch starts "
            f"with {manifest.recipe_sha256[:16]}, resume with --recipe-sha256 {manifest.recipe_sha256[:16]}"
        )
    if launched.get("manifest_sha256") != manifest_sha256:
        raise StarfishBatchError(
            f"cannot resume run {manifest.run_id}: {manifest_url} changed since you launched it (sha256 "
            f"{str(launched.get('manifest_sha256'))[:12]}... then, {manifest_sha256[:12]}... now): "
            "refusing to run what someone else wrote there"
        )
