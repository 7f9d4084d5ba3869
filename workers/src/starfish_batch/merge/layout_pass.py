"""The one extra read take-max needs: every FOV table opened for its ``xc``/``yc`` columns."""

from __future__ import annotations

from collections.abc import Iterator

from starfish_batch.merge.reader import H5Table


def tables_for(manifest, present: list[str], sources, reading) -> Iterator[tuple[str, object]]:
    """(fov, open table) for every present FOV, through the merge's own ``_sources``; each
    table is closed once the caller moves on."""
    for fov, source, _record, _digest in sources(manifest, present):
        label = manifest.fov_url(fov, ".nc")
        with reading(fov, label):
            h5 = H5Table(source, label)
        try:
            yield fov, h5
        finally:
            h5.close()
