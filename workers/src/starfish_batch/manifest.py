"""The run manifest: the one document every worker of a run reads to know what to do."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
import secrets
from dataclasses import asdict, dataclass, field

from starfish_batch import __version__, storage
from starfish_batch.contract import FOVS_DIR, MANIFEST_NAME, MERGED_NAME
from starfish_batch.errors import StarfishBatchError
from starfish_batch.names import storage_keys

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
    """``fovs/<key><suffix>``: ``key`` is the FOV's storage key (:mod:`starfish_batch.names`), not its name."""
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
        if data["all_fovs"] is None:
            del data["all_fovs"]
        if not data["inputs_sha256"]:
            del data["inputs_sha256"]
        if data["fovs_per_job"] == 1:
            del data["fovs_per_job"]
        return json.dumps(data, indent=2) + "\n"

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
        return cls.from_json(text, source=url)

    def save(self, url: str | None = None, exclusive: bool = False) -> str:
        """Write the manifest; ``exclusive`` claims the name (a second writer gets AlreadyExists)."""
        url = url or storage.join(self.run_root, MANIFEST_NAME)
        if exclusive:
            storage.create_exclusive(url, self.to_json().encode("utf-8"))
        else:
            storage.write_text(url, self.to_json())
        return url


def resume_manifest_url(run_root: str) -> str:
    """The next free ``manifest-resume-<n>.json`` name of a run."""
    names = set(storage.list_names(run_root))
    n = 1
    while f"manifest-resume-{n}.json" in names:
        n += 1
    return storage.join(run_root, f"manifest-resume-{n}.json")
