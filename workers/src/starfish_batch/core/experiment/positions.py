"""Every FOV's stage extent, read at planning for the overlap rule (``starfish_batch.core.layout``).

One primary tile-set document per FOV, many at a time through the shared clients; a flat
collection (starfish's builder writes one) is read from its member list, others FOV by FOV.
Only the tiles' coordinates are wanted, so each document is parsed with the plain JSON reader
(the workers, which open the FOV, check it fully), and a document several FOVs share is read
once. A FOV whose document cannot be read or has no coordinates has no extent: the merge keeps
all its transcripts and says so, it never guesses a position.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

from starfish_batch.core import storage
from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.core.experiment.documents import PRIMARY, Document, ExperimentDocument, find_tileset
from starfish_batch.core.experiment.extent import pixel_size, stage_extent
from starfish_batch.core.layout import FovLayout

THREADS = 32


def read_layout(experiment: ExperimentDocument, names: list[str]) -> FovLayout:
    image_type = PRIMARY if PRIMARY in experiment.images else next(iter(experiment.images))
    collection = experiment.collection(image_type)
    members = collection.members()
    found: dict[str, tuple] = {}
    lock = threading.Lock()

    def position(doc: Document) -> tuple:
        docs = {image_type: doc}
        ext = stage_extent(docs)
        return (None if ext is None else [*ext["xc"], *ext["yc"]]), pixel_size(docs)

    def by_url(url: str) -> tuple | None:
        with lock:
            if url in found:
                return found[url]
        try:
            doc = json.loads(storage.read_bytes(url))
        except (StarfishBatchError, ValueError):
            doc = None
        result = position(Document(url, doc)) if isinstance(doc, dict) and "tiles" in doc else None
        with lock:
            found[url] = result
        return result

    def one(fov: str) -> tuple:
        result = by_url(collection.url_of(members[fov])) if fov in members else None
        if result is None:  # a nested collection: found the way a worker finds it
            try:
                doc = find_tileset(collection, fov)
            except StarfishBatchError:
                doc = None
            result = position(doc) if doc is not None else (None, None)
        return result

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        results = list(pool.map(one, names))
    sizes = [p for _, p in results if p]
    return FovLayout.build(names, {fov: ext for fov, (ext, _) in zip(names, results, strict=True)},
                           min(sizes) if sizes else None)
