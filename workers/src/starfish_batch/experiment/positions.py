"""Every FOV's stage extent, read at planning for the overlap rule (``starfish_batch.layout``).

One primary tile-set document per FOV, many at a time through the shared clients; a flat
collection (starfish's builder writes one) is read from its member list, others FOV by FOV.
A FOV whose document cannot be read or has no coordinates has no extent: the merge keeps all
its transcripts and says so, it never guesses a position.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from starfish_batch.errors import StarfishBatchError
from starfish_batch.experiment.documents import PRIMARY, ExperimentDocument, find_tileset, read
from starfish_batch.experiment.extent import pixel_size, stage_extent
from starfish_batch.layout import FovLayout

THREADS = 32


def read_layout(experiment: ExperimentDocument, names: list[str]) -> FovLayout:
    image_type = PRIMARY if PRIMARY in experiment.images else next(iter(experiment.images))
    collection = experiment.collection(image_type)
    members = collection.members()

    def one(fov: str):
        try:
            if fov in members:
                doc = read(collection.url_of(members[fov]), f"tile set of FOV {fov}")
                if not doc.is_tileset:
                    doc = find_tileset(doc, fov) if doc.is_collection else None
            else:
                doc = find_tileset(collection, fov)
        except StarfishBatchError:
            return None, None
        if doc is None:
            return None, None
        docs = {image_type: doc}
        ext = stage_extent(docs)
        return (None if ext is None else [*ext["xc"], *ext["yc"]]), pixel_size(docs)

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        found = list(pool.map(one, names))
    sizes = [p for _, p in found if p]
    return FovLayout.build(names, {fov: ext for fov, (ext, _) in zip(names, found, strict=True)},
                           min(sizes) if sizes else None)
