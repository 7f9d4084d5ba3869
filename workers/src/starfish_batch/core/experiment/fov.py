"""One field of view as starfish gives it to a recipe: a genuine ``FieldOfView`` and the codebook.

Built from the experiment's documents that concern this FOV alone (see :mod:`.documents`):
each tile set is parsed by slicedimage itself, exactly as ``Experiment.from_json`` parses it,
and each tile is then pointed at bytes already fetched by :mod:`.tiles`, so starfish decodes
the same pixels without reading anything again.
"""

from __future__ import annotations

import posixpath
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING

from starfish_batch.core.errors import ExperimentError
from starfish_batch.core.experiment.checks import check_codebook
from starfish_batch.core.experiment.documents import Document, ExperimentDocument
from starfish_batch.core.experiment.extent import stage_extent
from starfish_batch.core.experiment.tiles import TileRef, fetch_all
from starfish_batch.core.experiment.urls import resolve, slicedimage_baseurl

if TYPE_CHECKING:
    from slicedimage import TileSet
    from starfish import Codebook
    from starfish.core.experiment.experiment import FieldOfView


@dataclass
class FovView:
    """What a recipe receives (``fov``, ``codebook``) and what loading them read."""

    fov: FieldOfView
    codebook: Codebook
    tiles: int
    tile_bytes: int
    extent: dict[str, list[float]] | None = None  # stage bounds, see .extent


class _FetchedTile:
    """A tile's numpy future over bytes already fetched and checked."""

    def __init__(self, data: bytes, tile_format) -> None:
        self.data = data
        self.tile_format = tile_format

    def __call__(self, *args, **kwargs):
        return self.tile_format.reader_func(BytesIO(self.data))


def _tile_format(tile_doc: dict, tileset: TileSet, url: str):
    """slicedimage's rule: the tile's format, else the tile set's default, else the extension."""
    from slicedimage import ImageFormat  # lazy: slicedimage ~1 s

    name = tile_doc.get("tile_format")
    if name:
        return ImageFormat[name]
    if tileset.default_tile_format is not None:
        return tileset.default_tile_format
    return ImageFormat.find_by_extension(posixpath.splitext(url)[1].lstrip("."))


def parse_tileset(doc: Document) -> TileSet:
    """The tile set as slicedimage parses it (its tiles still pointing at their URLs)."""
    from packaging.version import InvalidVersion, Version  # lazy: packaging ~20 ms
    from slicedimage.io import VERSIONS  # lazy: slicedimage ~1 s

    try:
        version = Version(str(doc.doc.get("version")))
        for version_cls in VERSIONS:
            if version_cls.Reader.can_parse(version):
                return version_cls.Reader().parse(doc.doc, slicedimage_baseurl(doc.url), None)
    except InvalidVersion as exc:
        raise ExperimentError(f"tile set {doc.url}: {exc}") from None
    except Exception as exc:  # KeyError, ValueError from a malformed document
        raise ExperimentError(f"tile set {doc.url} cannot be parsed: {type(exc).__name__}: {exc}") from exc
    raise ExperimentError(f"tile set {doc.url}: format version {version} is not one slicedimage reads")


def load_tiles(documents: dict[str, Document], tilesets: dict[str, TileSet]) -> int:
    """Fetch every tile of every tile set in one parallel batch and point each tile at its
    bytes; returns the bytes fetched."""
    pending = []
    for image_type, doc in documents.items():
        tileset = tilesets[image_type]
        for tile, tile_doc in zip(tileset.tiles(), doc.doc["tiles"], strict=True):
            ref = TileRef(resolve(str(tile_doc["file"]), doc.url), tile_doc.get("sha256"))
            pending.append((tile, ref, _tile_format(tile_doc, tileset, ref.url)))
    contents = fetch_all([ref for _, ref, _ in pending])
    for (tile, _, tile_format), data in zip(pending, contents, strict=True):
        tile.set_numpy_array_future(_FetchedTile(data, tile_format))
    return sum(len(data) for data in contents)


def open_codebook(url: str, data: bytes) -> Codebook:
    """starfish's own ``Codebook.open_json`` on the codebook's bytes (read from ``url``)."""
    from starfish import Codebook  # lazy: import starfish takes seconds

    with tempfile.TemporaryDirectory(prefix="starfish-batch-codebook-") as tmp:
        path = Path(tmp) / "codebook.json"
        path.write_bytes(data)
        try:
            return Codebook.open_json(str(path))
        except Exception as exc:
            raise ExperimentError(f"codebook {url} cannot be opened: {type(exc).__name__}: {exc}") from exc


def open_fov(experiment: ExperimentDocument, name: str, fetch: bool = True) -> FovView:
    """The FOV ``name`` with its codebook; with ``fetch=False`` its tiles are not read (a check)."""
    from starfish import Experiment  # lazy: import starfish takes seconds
    from starfish.core.experiment.experiment import FieldOfView  # lazy: import starfish takes seconds

    try:
        Experiment.verify_version(experiment.version)
    except ValueError as exc:
        raise ExperimentError(f"cannot open experiment {experiment.url}: {exc}") from None
    with ThreadPoolExecutor(max_workers=1) as pool:  # the codebook arrives while the FOV is found
        codebook_bytes = pool.submit(experiment.read_codebook)
        documents = experiment.fov_tilesets(name)
        codebook_data = codebook_bytes.result()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        codebook = open_codebook(experiment.codebook_url, codebook_data)
        tilesets = {image_type: parse_tileset(doc) for image_type, doc in documents.items()}
    check_codebook(experiment.codebook_url, codebook, tilesets, name)  # before the run, not per FOV
    n_tiles = sum(len(ts.tiles()) for ts in tilesets.values())
    fetched = load_tiles(documents, tilesets) if fetch else 0
    return FovView(FieldOfView(name, image_tilesets=tilesets), codebook, n_tiles, fetched,
                   stage_extent(documents))
