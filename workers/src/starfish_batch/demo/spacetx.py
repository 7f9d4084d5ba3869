"""The demo's SpaceTx documents: ``experiment.json``, its tile sets (``primary``, ``dots``,
``nuclei``, one TIFF per tile) and its real codebook, written with starfish's builder.

The builder names FOVs ``fov_000``, ``fov_001``, ...: here the files are named after the real
FOV names, and so are the partitions in the image manifests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from slicedimage import ImageFormat, WriterContract
from starfish import Codebook
from starfish.experiment.builder import write_experiment_json
from starfish.types import Axes, Coordinates

from starfish_batch.demo.ground_truth import GROUND_TRUTH_NAME
from starfish_batch.demo.images import FovImages

IMAGE_NAMES = ("primary", "dots", "nuclei")
EARLIER_FILES = ("primary*.json", "dots*.json", "nuclei*.json", "primary-*.tiff", "dots-*.tiff",
                 "nuclei-*.tiff", "experiment.json", "codebook.json", GROUND_TRUTH_NAME)
"""What an earlier demo in the same folder wrote (and only that)."""


class _Tile:
    """A builder FetchedTile over an array already computed."""

    def __init__(self, data: np.ndarray, coordinates: Mapping):
        self._data = data
        self._coordinates = coordinates

    @property
    def shape(self):
        return {Axes.Y: self._data.shape[0], Axes.X: self._data.shape[1]}

    @property
    def coordinates(self):
        return self._coordinates

    @property
    def extras(self):
        return {}

    def tile_data(self) -> np.ndarray:
        return self._data


class _Fetcher:
    """A builder TileFetcher: one image type's tiles, from the images already drawn."""

    def __init__(self, images: Sequence[FovImages], coords: Sequence[Mapping], image_name: str):
        self._images, self._coords, self._image_name = images, coords, image_name

    def get_tile(self, fov_id, round_label, ch_label, zplane_label) -> _Tile:
        images = self._images[fov_id]
        if self._image_name == "primary":
            return _Tile(images.primary[(round_label, ch_label)], self._coords[fov_id])
        return _Tile(getattr(images, self._image_name), self._coords[fov_id])


class _NamedWriterContract(WriterContract):
    """Tile files named after the FOVs' real names (``file_parts``), not the builder's."""

    def __init__(self, file_parts: Mapping[str, str]):
        super().__init__()
        self._file_parts = file_parts

    def partition_url_generator(self, parent_partition_url: str, partition_name: str):
        return super().partition_url_generator(
            parent_partition_url, self._file_parts.get(partition_name, partition_name)
        )


def _safe_file_part(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "fov"


def _file_parts(builder_names: Mapping[str, str]) -> dict[str, str]:
    """``{builder name: file-name part}``: the FOV's name made safe for a file name, and unique."""
    file_parts: dict[str, str] = {}
    for builder_name, name in builder_names.items():
        part = _safe_file_part(name)
        while part in file_parts.values():
            part += "_"
        file_parts[builder_name] = part
    return file_parts


def tile_coordinates(origin: tuple[float, float], shape: tuple[int, int], pixel_size: float) -> dict:
    """A FOV's physical extent from its (x, y) minimum: ``pixel_size`` per pixel, one z-plane."""
    (x_min, y_min), (height, width) = origin, shape
    return {
        Coordinates.X: (x_min, x_min + (width - 1) * pixel_size),
        Coordinates.Y: (y_min, y_min + (height - 1) * pixel_size),
        Coordinates.Z: (0.0, 0.0),
    }


def remove_earlier_demo(out_dir: Path) -> None:
    """Drop the files an earlier demo wrote here (only those), so that no tile of a FOV that no
    longer exists lingers."""
    for pattern in EARLIER_FILES:
        for stale in out_dir.glob(pattern):
            stale.unlink()


def write_spacetx(out_dir: Path, fov_names: Sequence[str], images: Sequence[FovImages],
                  coords: Sequence[Mapping], code_array: list[dict], n_rounds: int, n_channels: int,
                  shape: tuple[int, int]) -> Path:
    """``experiment.json``, its tile sets and codebook in ``out_dir``; returns experiment.json."""
    builder_names = {f"fov_{i:03}": name for i, name in enumerate(fov_names)}
    height, width = shape
    write_experiment_json(
        str(out_dir),
        len(fov_names),
        ImageFormat.TIFF,
        primary_image_dimensions={Axes.ROUND: n_rounds, Axes.CH: n_channels, Axes.ZPLANE: 1},
        aux_name_to_dimensions={name: {Axes.ROUND: 1, Axes.CH: 1, Axes.ZPLANE: 1}
                                for name in ("dots", "nuclei")},
        primary_tile_fetcher=_Fetcher(images, coords, "primary"),
        aux_tile_fetcher={name: _Fetcher(images, coords, name) for name in ("dots", "nuclei")},
        default_shape={Axes.Y: height, Axes.X: width},
        writer_contract=_NamedWriterContract(_file_parts(builder_names)),
    )
    for image_name in IMAGE_NAMES:
        manifest_path = out_dir / f"{image_name}.json"
        manifest = json.loads(manifest_path.read_text())
        manifest["contents"] = {
            builder_names.get(key, key): value for key, value in manifest["contents"].items()
        }
        manifest_path.write_text(json.dumps(manifest, indent=4, sort_keys=True))

    # The builder writes a placeholder codebook: replace it with the real one.
    Codebook.from_code_array(code_array).to_json(str(out_dir / "codebook.json"))
    return out_dir / "experiment.json"
