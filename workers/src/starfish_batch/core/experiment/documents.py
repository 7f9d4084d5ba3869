"""The JSON documents of a SpaceTx experiment, read one at a time and only when needed.

``Experiment.from_json`` parses every FOV's tile-set documents of every image type; a worker
needs its own FOV only, and the launcher needs the FOV names only. Here the experiment is a
tree of documents walked from the top: ``experiment.json``, one collection per image type,
then the tile set of one FOV. Reads go through :mod:`starfish_batch.core.storage` (one S3 client,
one https session); nothing here knows starfish.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from starfish_batch.core import printable, storage
from starfish_batch.core.errors import ExperimentError, StorageError
from starfish_batch.core.experiment.urls import resolve

PRIMARY = "primary"  # starfish's FieldOfView.PRIMARY_IMAGES
DOCUMENT_THREADS = 8


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"key {key!r} appears twice")
        seen[key] = value
    return seen


def read_bytes(url: str, what: str) -> bytes:
    """The object at ``url``; one that cannot be read is one line naming what it is and where."""
    try:
        return storage.read_bytes(url)
    except StorageError as exc:
        raise ExperimentError(f"cannot open {what} {url}: {exc.reason}") from exc


def parse_document(data: bytes, url: str, what: str = "document") -> dict:
    """``data`` (read from ``url``) as a JSON object, refusing duplicate keys."""
    try:
        doc = json.loads(data, object_pairs_hook=_no_duplicate_keys)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, a duplicate key
        raise ExperimentError(f"cannot open {what} {url}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(doc, dict):
        raise ExperimentError(f"cannot open {what} {url}: not a JSON object")
    return doc


@dataclass(frozen=True)
class Document:
    """A parsed document and the URL it was read from (its references resolve against it)."""

    url: str
    doc: dict
    sha256: str = ""

    @property
    def is_collection(self) -> bool:
        return "contents" in self.doc

    @property
    def is_tileset(self) -> bool:
        return "tiles" in self.doc

    def members(self) -> dict[str, str]:
        """A collection's members: name -> reference as written (resolve with :meth:`url_of`)."""
        contents = self.doc.get("contents")
        if not isinstance(contents, dict):
            raise ExperimentError(f"{self.url} is not a collection: it has no \"contents\" object")
        return contents

    def url_of(self, reference: str) -> str:
        return resolve(str(reference), self.url)


def read(url: str, what: str = "document") -> Document:
    data = read_bytes(url, what)
    return Document(url, parse_document(data, url, what), hashlib.sha256(data).hexdigest())


class Digests:
    """The sha256 of every document an experiment reader read, checked against a run's record.

    The launcher records what it read when it plans a run (the manifest's ``inputs_sha256``);
    each worker and each resume reads with those as ``expected``, so an experiment rewritten
    after a run started is refused, naming the document, instead of mixed into the run.
    """

    def __init__(self, expected: dict[str, str] | None = None) -> None:
        self.expected = dict(expected or {})
        self.seen: dict[str, str] = {}

    def check(self, url: str, sha256: str, what: str) -> None:
        self.seen[url] = sha256
        want = self.expected.get(url)
        if want and want != sha256:
            raise ExperimentError(
                f"{what} {url} changed since the run started (sha256 {sha256[:12]}..., "
                f"the run recorded {want[:12]}...)"
            )


def read_many(urls: list[str], read: Callable[..., Document] = read) -> list[Document]:
    """Several documents at once through the shared clients (bounded threads)."""
    if len(urls) <= 1:
        return [read(u) for u in urls]
    with ThreadPoolExecutor(max_workers=min(DOCUMENT_THREADS, len(urls))) as pool:
        return list(pool.map(read, urls))


@dataclass(frozen=True)
class ExperimentDocument:
    """``experiment.json``: its version, codebook URL and one collection URL per image type."""

    url: str
    version: str
    codebook_url: str
    images: dict[str, str]
    primary_only: bool  # before format 5.0.0, only the primary images say which FOVs exist
    cache: dict[str, Document] = field(default_factory=dict, compare=False, repr=False)
    digests: Digests = field(default_factory=Digests, compare=False, repr=False)

    @classmethod
    def open(cls, url: str, expected: dict[str, str] | None = None) -> ExperimentDocument:
        """``experiment.json`` at ``url``; ``expected`` (URL -> sha256) pins documents a run recorded."""
        digests = Digests(expected)
        if storage.is_dir(url):
            inside = storage.join(url, "experiment.json")
            hint = f"; did you mean {inside}?" if storage.exists(inside) else ""
            raise ExperimentError(f"cannot open experiment {url}: it is a folder, not an experiment.json{hint}")
        data = read_bytes(url, "experiment")
        digests.check(url, hashlib.sha256(data).hexdigest(), "experiment")
        doc = parse_document(data, url, "experiment")
        from packaging.version import InvalidVersion, Version  # lazy: packaging ~20 ms

        try:
            version = str(doc["version"])
            codebook = str(doc["codebook"])
            primary_only = Version(version) < Version("5.0.0")  # starfish's own test
            if primary_only:  # format 4: primary_images + auxiliary_images
                images = {PRIMARY: str(doc["primary_images"])}
                images.update({str(k): str(v) for k, v in doc.get("auxiliary_images", {}).items()})
            else:
                images = {str(k): str(v) for k, v in doc["images"].items()}
        except InvalidVersion as exc:
            raise ExperimentError(f"cannot open experiment {url}: {exc}") from None
        except (KeyError, AttributeError, TypeError) as exc:
            raise ExperimentError(f"cannot open experiment {url}: not a SpaceTx experiment "
                                  f"(missing or malformed {exc})") from None
        return cls(
            url=url, version=version, codebook_url=resolve(codebook, url),
            images={name: resolve(ref, url) for name, ref in images.items()}, primary_only=primary_only,
            digests=digests,
        )

    def read(self, url: str, what: str = "document") -> Document:
        """A document of this experiment, read once however often planning and loading ask."""
        if url not in self.cache:
            doc = read(url, what)
            self.digests.check(url, doc.sha256, what)
            self.cache[url] = doc
        return self.cache[url]

    def read_codebook(self) -> bytes:
        data = read_bytes(self.codebook_url, "codebook")
        self.digests.check(self.codebook_url, hashlib.sha256(data).hexdigest(), "codebook")
        return data

    def collection(self, image_type: str) -> Document:
        return self.read(self.images[image_type], f"{image_type} images collection")

    def fov_names(self) -> list[str]:
        """Every FOV name, sorted as starfish sorts them, from the collection documents alone."""
        names: set[str] = set()
        for image_type in ([PRIMARY] if self.primary_only else list(self.images)):
            found = set(tileset_names(self.collection(image_type), self.read))
            for name in found:
                problem = printable.not_unicode(name)
                if problem:
                    raise ExperimentError(f"experiment {self.url}: FOV name {printable.escape(name)} in "
                                          f"{self.images[image_type]} is not usable: {problem}; rename it")
            names.update(found)
        if not names:
            raise ExperimentError(f"experiment {self.url} has no field of view")
        return sorted(names)

    def fov_tilesets(self, fov: str) -> dict[str, Document]:
        """The tile-set document of ``fov`` for each image type that has one."""
        def lookup(image_type: str) -> Document | None:
            return find_tileset(self.collection(image_type), fov, self.read)

        with ThreadPoolExecutor(max_workers=DOCUMENT_THREADS) as pool:  # image types side by side
            documents = dict(zip(self.images, pool.map(lookup, self.images), strict=True))
        found = {image_type: doc for image_type, doc in documents.items() if doc is not None}
        if not found:
            raise ExperimentError(f"FOV {fov} is not in experiment {self.url}: no image collection lists it")
        return found


Read = Callable[..., Document]


def _is_flat(collection: Document, members: dict[str, str], read: Read) -> bool:
    """Whether a collection holds tile sets directly, judged by its first member.

    A collection is written either as tile sets (what starfish's builder writes) or as nested
    collections; reading the first member tells which, so a flat collection of 10,000 FOVs
    costs one read, not 10,000.
    """
    first_name = next(iter(members))
    first = read(collection.url_of(members[first_name]), f"tile set of FOV {first_name}")
    if first.is_collection:
        return False
    if not first.is_tileset:
        raise ExperimentError(f"{first.url} (member {first_name!r} of {collection.url}) is neither "
                              "a collection nor a tile set")
    return True


def tileset_names(collection: Document, read: Read = read) -> Iterator[str]:
    """The name of every tile set under ``collection`` (its FOVs), in slicedimage's order."""
    members = collection.members()
    if not members:
        return
    if _is_flat(collection, members, read):
        yield from map(str, members)
        return
    for doc, name in zip(read_many([collection.url_of(ref) for ref in members.values()], read), members, strict=True):
        if doc.is_collection:
            yield from tileset_names(doc, read)
        else:
            yield str(name)


def find_tileset(collection: Document, fov: str, read: Read = read) -> Document | None:
    """The tile-set document of ``fov`` under ``collection``, reading no other FOV's tile set."""
    members = collection.members()
    if not members:
        return None
    if fov in members:  # a tile set named here; else a collection of that name to search
        doc = read(collection.url_of(members[fov]), f"tile set of FOV {fov}")
        if doc.is_tileset:
            return doc
    if _is_flat(collection, members, read):
        return None
    for doc, name in zip(read_many([collection.url_of(ref) for ref in members.values()], read), members,
                         strict=True):
        if doc.is_collection:
            found = find_tileset(doc, fov, read)
            if found is not None:
                return found
        elif name == fov:
            return doc
    return None
