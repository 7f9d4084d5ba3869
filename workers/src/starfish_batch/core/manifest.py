"""The run manifest: the one document every worker of a run reads to know what to do."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
import secrets
from dataclasses import asdict, dataclass, field

from starfish_batch import __version__
from starfish_batch.core import storage
from starfish_batch.core.contract import FOVS_DIR, LAYOUT_NAME, MANIFEST_NAME, MERGED_NAME
from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.core.names import storage_keys

SCHEMA_VERSION = 1
RUN_ID_RE = re.compile(r"^[a-z0-9-]{1,64}$")


def new_run_id(now: dt.datetime | None = None) -> str:
    """UTC time plus a short random suffix: sortable, and two runs started together never collide."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def check_run_id(run_id: str) -> str:
    if not RUN_ID_RE.match(run_id):
        raise StarfishBatchError(
            f"invalid run id {run_id!r}: use 1 to 64 characters among a-z, 0-9 and '-'"
        )
    return run_id


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run_url(results_url: str, run_id: str) -> str:
    return storage.join(storage.absolute(results_url), run_id)


def fov_output_url(run_root: str, key: str, suffix: str = ".nc") -> str:
    """``fovs/<key><suffix>``: ``key`` is the FOV's storage key (:mod:`starfish_batch.core.names`), not its name."""
    return storage.join(run_root, FOVS_DIR, f"{key}{suffix}")


@dataclass
class Manifest:
    run_id: str
    experiment_url: str
    recipe_url: str
    recipe_sha256: str
    results_url: str
    fovs: list[str]
    created_at: str = field(
        default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    )
    version: str = __version__
    schema_version: int = SCHEMA_VERSION
    all_fovs: list[str] | None = None
    """For a resume manifest: every FOV of the run (``fovs`` holds only those left to do)."""
    inputs_sha256: dict[str, str] = field(default_factory=dict)
    """URL -> sha256 of the experiment documents the launcher read (experiment, codebook,
    collections, the first FOV's tile sets): workers refuse an experiment that changed."""
    subset_of: int | None = None
    """A partial run (``--fovs``, ``--fovs-sample``): how many FOVs the experiment has; None: all of them."""
    recipe_source: str | None = None
    """The recipe file the run was started with (``recipe_url`` is the run's own copy): the
    advice after a recipe error starts a new run from it, once fixed."""
    overlap: str | None = None
    """``--overlap`` as asked (``nearest``, ``keep-all``, ``take-max``; None: the default), so
    a resume merges the same way (``starfish_batch.core.layout``)."""
    layout_sha256: str | None = None
    """sha256 of ``fov_layout.json`` (the FOVs' stage extents, read at planning); None: none recorded."""
    fovs_per_job: int = 1
    """How many FOVs one process-fov job (array index) runs: index i runs ``fovs[i*N:(i+1)*N]``
    (:meth:`job_fovs`). Written only when above 1, so a manifest without it (every run before
    packing) means one FOV per index and resumes as it was submitted."""

    @property
    def run_root(self) -> str:
        """``<results-url>/<run-id>``: everything this run writes is under it."""
        return storage.join(self.results_url, self.run_id)

    @property
    def run_fovs(self) -> list[str]:
        """Every FOV of the run, also for a resume manifest (the merge needs them all)."""
        return self.all_fovs if self.all_fovs is not None else self.fovs

    @property
    def merged_url(self) -> str:
        return storage.join(self.run_root, MERGED_NAME)

    @functools.cached_property
    def keys(self) -> dict[str, str]:
        """FOV name -> storage key, for every FOV of the run (names are data, never paths)."""
        return storage_keys(self.run_fovs)

    @functools.cached_property
    def fov_indices(self) -> dict[str, int]:
        """FOV name -> its position in the run (``run_fovs``): the index its outputs carry."""
        return self._run_indices

    def run_index(self, fov: str) -> int | None:
        """``fov``'s place among the run's FOVs (not among those a resume has left to do)."""
        return self._run_indices.get(fov)

    @functools.cached_property
    def _run_indices(self) -> dict[str, int]:
        return {fov: i for i, fov in enumerate(self.run_fovs)}

    def fov_url(self, fov: str, suffix: str = ".nc") -> str:
        """Where FOV ``fov`` (a name of this run) writes ``suffix``: named by its storage key."""
        return fov_output_url(self.run_root, self.keys[fov], suffix)

    @property
    def n_jobs(self) -> int:
        """How many process-fov jobs (array indexes) the manifest's FOVs need."""
        return -(-len(self.fovs) // self.fovs_per_job)

    def job_fovs(self, job_index: int) -> range:
        """The indexes into ``fovs`` that job ``job_index`` runs (the worker's slice)."""
        if not 0 <= job_index < self.n_jobs:
            raise StarfishBatchError(
                f"array index {job_index} is out of range: manifest of run {self.run_id} "
                f"has {self.n_jobs} job(s) ({len(self.fovs)} FOVs, {self.fovs_per_job} per job)"
            )
        start = job_index * self.fovs_per_job
        return range(start, min(len(self.fovs), start + self.fovs_per_job))

    @property
    def sha256(self) -> str:
        """The digest the executors pass to every job, so no one can swap the manifest later."""
        return sha256_hex(self.to_json().encode("utf-8"))

    def to_json(self) -> str:
        data = asdict(self)
        for name in ("all_fovs", "subset_of", "recipe_source"):
            if data[name] is None:
                del data[name]
        if not data["inputs_sha256"]:
            del data["inputs_sha256"]
        # paths inside the run are relative to its folder: a moved or shared folder still works
        data["recipe_url"] = relative_to_run(self.run_root, self.recipe_url)
        data["results_url"] = PARENT  # the folder holding the run's: wherever the run is now
        for key in ("overlap", "layout_sha256"):
            if data[key] is None:
                del data[key]
        if data["fovs_per_job"] == 1:
            del data["fovs_per_job"]
        return json.dumps(data, indent=2) + "\n"

    def rebase(self, url: str) -> None:
        """Where the manifest was read from is where the run is now (a folder moved or shared
        since it was written): the run's own paths follow it."""
        folder, _, _name = url.rpartition("/")
        parent, _, run_folder = folder.rpartition("/")
        if not _is_absolute(self.results_url):  # PARENT, as written by to_json
            self.results_url = parent or "/"
        old_root = self.run_root
        if folder and parent and run_folder == self.run_id and folder != old_root:
            self.results_url = parent
        if self.recipe_url.startswith(old_root + "/"):
            self.recipe_url = storage.join(self.run_root, self.recipe_url[len(old_root) + 1:])
        elif not _is_absolute(self.recipe_url):
            self.recipe_url = storage.join(self.run_root, self.recipe_url)

    @classmethod
    def from_json(cls, text: str, source: str = "manifest") -> Manifest:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StarfishBatchError(f"{source} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise StarfishBatchError(f"{source} is not a JSON object")
        if data.get("schema_version") != SCHEMA_VERSION:
            raise StarfishBatchError(
                f"{source} has schema_version {data.get('schema_version')!r}; "
                f"this starfish-batch reads {SCHEMA_VERSION}"
            )
        known = {f for f in cls.__dataclass_fields__}
        missing = sorted(
            k for k in ("run_id", "experiment_url", "recipe_url", "recipe_sha256", "results_url", "fovs")
            if k not in data
        )
        if missing:
            raise StarfishBatchError(f"{source} lacks {', '.join(missing)}")
        if not isinstance(data["fovs"], list) or not all(isinstance(f, str) for f in data["fovs"]):
            raise StarfishBatchError(f"{source}: 'fovs' must be a list of FOV names")
        per_job = data.get("fovs_per_job", 1)
        if isinstance(per_job, bool) or not isinstance(per_job, int) or per_job < 1:
            raise StarfishBatchError(f"{source}: 'fovs_per_job' must be a whole number of at least 1, "
                                     f"not {per_job!r}")
        manifest = cls(**{k: v for k, v in data.items() if k in known})
        from starfish_batch.core.layout import RULES  # lazy: core.layout pulls numpy into worker start-up

        if manifest.overlap is not None and manifest.overlap not in RULES:
            raise StarfishBatchError(f"{source}: 'overlap' is {manifest.overlap!r}, not one of {', '.join(RULES)}")
        try:
            manifest.keys  # noqa: B018 - refuses duplicate or empty FOV names now, naming them
        except StarfishBatchError as exc:
            raise StarfishBatchError(f"{source}: {exc}") from None
        return manifest

    @classmethod
    def load(cls, url: str, sha256: str | None = None) -> Manifest:
        """The manifest at ``url``; with ``sha256`` (what the job was submitted with), only that one."""
        data = storage.read_bytes(url)
        if sha256 and sha256_hex(data) != sha256:
            raise StarfishBatchError(
                f"{url} changed after the run was submitted (sha256 {sha256_hex(data)[:12]}..., the jobs "
                f"carry {sha256[:12]}...): refusing to run what someone else wrote there"
            )
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StarfishBatchError(f"{url} is not valid JSON: {exc}") from None
        manifest = cls.from_json(text, source=url)
        manifest.rebase(url)
        return manifest

    def save(self, url: str | None = None, exclusive: bool = False) -> str:
        """Write the manifest; ``exclusive`` claims the name (a second writer gets AlreadyExists)."""
        url = url or storage.join(self.run_root, MANIFEST_NAME)
        if exclusive:
            storage.create_exclusive(url, self.to_json().encode("utf-8"))
        else:
            storage.write_text(url, self.to_json())
        return url


PARENT = ".."
"""``results_url`` as a manifest stores it: the folder holding the run folder, found from where
the manifest is read."""


def _is_absolute(url: str) -> bool:
    return url.startswith("/") or "://" in url


def relative_to_run(run_root: str, url: str) -> str:
    """``url`` as stored in a file of the run: relative to the run folder when it is inside it."""
    return url[len(run_root) + 1:] if url.startswith(run_root.rstrip("/") + "/") else url


def load_layout(manifest: Manifest):
    """The run's ``fov_layout.json`` as a :class:`~starfish_batch.core.layout.FovLayout`, checked
    against the manifest's digest; None when the run recorded none."""
    from starfish_batch.core.layout import FovLayout  # lazy: core.layout pulls numpy into worker start-up

    if not manifest.layout_sha256:
        return None
    url = storage.join(manifest.run_root, LAYOUT_NAME)
    data = storage.read_bytes(url)
    if sha256_hex(data) != manifest.layout_sha256:
        raise StarfishBatchError(f"{url} changed after the run was planned (sha256 {sha256_hex(data)[:12]}..., "
                                 f"the manifest records {manifest.layout_sha256[:12]}...)")
    try:
        return FovLayout.from_json(data)
    except (ValueError, KeyError, TypeError) as exc:
        raise StarfishBatchError(f"{url} is not a FOV layout: {exc}") from None


def resume_manifest_url(run_root: str) -> str:
    """The next free ``manifest-resume-<n>.json`` name of a run."""
    names = set(storage.list_names(run_root))
    n = 1
    while f"manifest-resume-{n}.json" in names:
        n += 1
    return storage.join(run_root, f"manifest-resume-{n}.json")
