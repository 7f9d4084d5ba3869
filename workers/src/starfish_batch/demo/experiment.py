"""A small synthetic ISS-like experiment in SpaceTx format, with its ground truth.

``write_demo_experiment(out_dir)`` writes ``experiment.json`` (plus its images and a real
codebook) and ``ground_truth.csv`` beside it. Each field of view has

- a ``primary`` image: ``n_rounds`` rounds x ``n_channels`` channels x 1 z-plane, uint16;
  every spot (a rolling-circle amplicon) lights exactly one channel per round, the one its
  target's codeword names (the one-hot-per-round codes that ``PerRoundMaxChannel`` decodes);
  each round is translated by a known shift of a few pixels (round 0 is not shifted);
- a ``dots`` auxiliary image (1 round, 1 channel): every amplicon, in the round-0 frame,
  as an "anchor" stain; the ISS recipe registers the rounds to it and detects spots on it;
- a ``nuclei`` auxiliary image (1 round, 1 channel): a few round DAPI-like nuclei (their
  own random positions, drawn from a second generator so the spots and the ground truth do
  not depend on them), for recipes that segment cells (``examples/iss_cells_recipe.py``);
- a smooth uneven background, a little channel bleed-through and Poisson-like noise.

``ground_truth.csv`` has one row per spot: ``fov, target, x, y, xc, yc`` with ``x``/``y`` the
pixel position in the FOV's round-0 (= dots) frame and ``xc``/``yc`` the physical position,
computed the way starfish does (``linspace(min, max, size)`` over each tile's physical range).
FOVs lie on a non-overlapping grid.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_FOV_NAMES = ("A1", "A2", "B1", "B2")  # default_fov_names(4)
DEFAULT_TARGETS = (
    "ACTB", "GAPDH", "ERBB2", "ESR1", "KRT8", "MKI67", "CD44", "VIM", "EPCAM", "PTPRC",
)
GROUND_TRUTH_NAME = "ground_truth.csv"
GROUND_TRUTH_COLUMNS = ("fov", "target", "x", "y", "xc", "yc")


def make_codebook_array(
    targets: Sequence[str], n_rounds: int, n_channels: int, seed: int = 0
) -> list[dict]:
    """Distinct one-channel-per-round codewords, as a starfish code array."""
    n_codes = n_channels**n_rounds
    if len(targets) > n_codes:
        raise ValueError(f"{len(targets)} targets but only {n_codes} distinct codewords")
    if len(set(targets)) != len(targets):
        raise ValueError("target names must be unique")
    rng = np.random.default_rng(seed)
    # Codes that differ from every other code in at least 2 rounds when there is room for it,
    # so that a single mis-called round does not silently turn one target into another.
    chosen: list[tuple[int, ...]] = []
    for min_distance in (2, 1):
        chosen = []
        for index in rng.permutation(n_codes):
            code = tuple(int(index) // n_channels**r % n_channels for r in range(n_rounds))
            distances = (sum(a != b for a, b in zip(code, c, strict=True)) for c in chosen)
            if all(d >= min_distance for d in distances):
                chosen.append(code)
            if len(chosen) == len(targets):
                break
        if len(chosen) == len(targets):
            break
    return [
        {"codeword": [{"r": r, "c": ch, "v": 1} for r, ch in enumerate(code)], "target": target}
        for target, code in zip(targets, chosen, strict=True)
    ]


def _place_spots(rng, n: int, shape: tuple[int, int], margin: float, min_sep: float):
    """``n`` positions (x, y) at least ``margin`` from the edges and ``min_sep`` apart."""
    height, width = shape
    placed = np.empty((0, 2), dtype=float)
    attempts = 0
    while len(placed) < n and attempts < 200 * max(n, 1):
        attempts += 1
        point = rng.uniform([margin, margin], [width - 1 - margin, height - 1 - margin])
        if not len(placed) or ((placed - point) ** 2).sum(axis=1).min() >= min_sep**2:
            placed = np.vstack([placed, point])
    if len(placed) < n:
        raise ValueError(f"could not place {n} spots {min_sep} px apart in a {shape} FOV")
    return placed


def _plan_overlapping_spots(rng, names, columns, shape, overlap, margin, min_sep, n_spots, empty_fovs,
                            target_names, spot_amplitude) -> dict[int, tuple]:
    """Each FOV's own spots (local x, y; targets; amplitudes), inside the part of the grid it owns."""
    height, width = shape
    gap = 2.0
    planned = {}
    for index, name in enumerate(names):
        row, col = divmod(index, columns)
        left, right = col > 0, col + 1 < columns and index + 1 < len(names)
        up, down = row > 0, index + columns < len(names)
        lo_x = max(margin, (overlap - 1) / 2 + gap) if left else margin
        hi_x = min(width - 1 - margin, width - (overlap + 1) / 2 - gap) if right else width - 1 - margin
        lo_y = max(margin, (overlap - 1) / 2 + gap) if up else margin
        hi_y = min(height - 1 - margin, height - (overlap + 1) / 2 - gap) if down else height - 1 - margin
        n = 0 if name in empty_fovs else int(n_spots)
        box = (hi_y - lo_y + 1 + 2 * margin, hi_x - lo_x + 1 + 2 * margin)
        positions = _place_spots(rng, n, box, margin, min_sep) + [lo_x - margin, lo_y - margin]
        targets = rng.choice(target_names, size=n) if n else np.array([], dtype=str)
        planned[index] = (positions, targets, spot_amplitude * rng.uniform(0.6, 1.4, size=n))
    return planned


def _seen_by(planned, index, columns, shape, overlap, reach) -> tuple:
    """Every planned spot that FOV ``index`` images (its own first), in its own pixels."""
    height, width = shape
    row, col = divmod(index, columns)
    xs, ys, targets, amps = [], [], [], []
    for other, (positions, t, a) in sorted(planned.items(), key=lambda kv: kv[0] != index):
        orow, ocol = divmod(other, columns)
        x = positions[:, 0] + (ocol - col) * (width - overlap)
        y = positions[:, 1] + (orow - row) * (height - overlap)
        seen = (x > -reach) & (x < width - 1 + reach) & (y > -reach) & (y < height - 1 + reach)
        xs.append(x[seen])
        ys.append(y[seen])
        targets.append(np.asarray(t)[seen])
        amps.append(a[seen])
    return (np.concatenate(xs), np.concatenate(ys), np.concatenate(targets).astype(str),
            np.concatenate(amps))


def _render(shape, xs, ys, amplitudes, sigma) -> np.ndarray:
    """Sum of isotropic Gaussians (peak = amplitude) on a float64 image, locally rendered."""
    height, width = shape
    image = np.zeros(shape, dtype=np.float64)
    half = int(np.ceil(4 * sigma))
    for x, y, a in zip(xs, ys, amplitudes, strict=True):
        x0, x1 = max(int(np.floor(x)) - half, 0), min(int(np.floor(x)) + half + 2, width)
        y0, y1 = max(int(np.floor(y)) - half, 0), min(int(np.floor(y)) + half + 2, height)
        if x0 >= x1 or y0 >= y1:
            continue
        gx = np.exp(-((np.arange(x0, x1) - x) ** 2) / (2 * sigma**2))
        gy = np.exp(-((np.arange(y0, y1) - y) ** 2) / (2 * sigma**2))
        image[y0:y1, x0:x1] += a * gy[:, None] * gx[None, :]
    return image


def _background(rng, shape, level: float) -> np.ndarray:
    """A smooth, uneven background (tissue autofluorescence): a low plane plus broad blobs."""
    height, width = shape
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    gx, gy = rng.uniform(-0.3, 0.3, size=2)
    image = level * (1 + gx * (xx / width - 0.5) + gy * (yy / height - 0.5))
    for _ in range(3):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        s = rng.uniform(0.15, 0.3) * min(shape)
        image += level * rng.uniform(0.2, 0.6) * np.exp(
            -((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s**2)
        )
    return image


def _render_nuclei(rng, shape: tuple[int, int], n: int, radius: float) -> np.ndarray:
    """``n`` flat-topped discs of ``radius`` pixels with soft edges (DAPI-stained nuclei)."""
    height, width = shape
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    image = np.zeros(shape, dtype=np.float64)
    centres = _place_spots(rng, n, shape, radius, min_sep=2.5 * radius)
    for cx, cy in centres:
        dist = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
        image = np.maximum(image, rng.uniform(0.5, 0.8) * np.clip((radius - dist) / 3 + 0.5, 0, 1))
    return image


def _to_uint16(rng, image: np.ndarray, noise: float) -> np.ndarray:
    """Add shot-like plus read noise (in [0, 1] units) and quantise to uint16."""
    # read noise of sd ``noise``; shot noise grows with the square root of the signal.
    sd = np.sqrt(noise**2 + 0.01 * noise * np.clip(image, 0, None))
    noisy = image + rng.normal(0.0, 1.0, image.shape) * sd
    return np.round(np.clip(noisy, 0.0, 1.0) * 65535).astype(np.uint16)


class _Tile:
    """A builder FetchedTile over an array already computed."""

    def __init__(self, data: np.ndarray, coordinates: Mapping):
        self._data = data
        self._coordinates = coordinates

    @property
    def shape(self):
        from starfish.types import Axes  # lazy: import starfish takes seconds

        return {Axes.Y: self._data.shape[0], Axes.X: self._data.shape[1]}

    @property
    def coordinates(self):
        return self._coordinates

    @property
    def extras(self):
        return {}

    def tile_data(self) -> np.ndarray:
        return self._data


def default_fov_names(n_fovs: int) -> list[str]:
    """Well-plate-like names on a square-ish grid: A1, A2, B1, B2 for 4; ..., AA1 past Z."""
    columns = int(np.ceil(np.sqrt(n_fovs)))
    names = []
    for i in range(n_fovs):
        row, col = divmod(i, columns)
        letters = ""
        row += 1
        while row:
            row, rest = divmod(row - 1, 26)
            letters = chr(ord("A") + rest) + letters
        names.append(f"{letters}{col + 1}")
    return names


def _safe_file_part(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "fov"


def write_demo_experiment(
    out_dir,
    *,
    fov_names: Sequence[str] | None = None,
    n_fovs: int = 4,
    shape: tuple[int, int] = (256, 256),
    n_spots: int = 60,
    empty_fovs: Sequence[str] = (),
    seed: int = 0,
    targets: Sequence[str] = DEFAULT_TARGETS,
    n_rounds: int = 4,
    n_channels: int = 4,
    max_shift: float = 4.0,
    spot_sigma: float = 1.5,
    spot_amplitude: float = 0.2,
    background: float = 0.05,
    noise: float = 0.002,
    bleed_through: float = 0.05,
    pixel_size: float = 0.5,
    nuclei_per_fov: int = 6,
    overlap: int = 0,
) -> Path:
    """Write a synthetic ISS-like SpaceTx experiment and its ground truth into ``out_dir``.

    Parameters
    ----------
    out_dir : directory to create (or reuse); the experiment is ``out_dir/experiment.json``.
    fov_names : free-form FOV names (unique); default the first ``n_fovs`` of
        ``A1, A2, B1, B2, ...`` (a row letter and a column number on a square-ish grid).
    n_fovs : number of FOVs when ``fov_names`` is not given.
    shape : (height, width) of every tile, in pixels.
    n_spots : spots per FOV (FOVs named in ``empty_fovs`` get none at all).
    empty_fovs : names of FOVs with no spot (background and noise only).
    seed : everything random (codebook, positions, targets, shifts, noise) derives from it.
    max_shift : per-round translations are drawn in [-max_shift, max_shift] pixels (round 0: 0).
    spot_sigma, spot_amplitude : Gaussian spot width (px) and median peak (in [0, 1] units,
        the amplitudes vary +-40 % spot to spot).
    background, noise, bleed_through : background level, noise sd and the fraction of a spot's
        signal that leaks into the neighbouring channels.
    pixel_size : physical size of a pixel (the unit of ``xc``/``yc``, e.g. micrometres).
    nuclei_per_fov : nuclei drawn in each FOV's ``nuclei`` image.
    overlap : pixels each FOV shares with its grid neighbours (0: FOVs side by side). Each
        spot is placed in the part of the grid its FOV owns (nearer its centre than any other
        FOV's, at least 2 px from that part's border) and drawn in every FOV that images it:
        the ground truth lists it once, under the FOV that owns it.

    Returns the path of ``experiment.json``.
    """
    from slicedimage import ImageFormat, WriterContract  # lazy: slicedimage ~1 s
    from starfish import Codebook  # lazy: import starfish takes seconds
    from starfish.experiment.builder import write_experiment_json  # lazy: import starfish takes seconds
    from starfish.types import Axes, Coordinates  # lazy: import starfish takes seconds

    if fov_names is None:
        fov_names = default_fov_names(n_fovs)
    fov_names = [str(name) for name in fov_names]
    if not fov_names:
        raise ValueError("at least one FOV is needed")
    if len(set(fov_names)) != len(fov_names):
        raise ValueError(f"FOV names must be unique: {fov_names}")
    unknown = set(empty_fovs) - set(fov_names)
    if unknown:
        raise ValueError(f"empty_fovs names FOVs that do not exist: {sorted(unknown)}")
    height, width = (int(shape[0]), int(shape[1]))
    margin = max_shift + 4 * spot_sigma + 2
    if min(height, width) <= 2 * margin + 1:
        raise ValueError(f"shape {shape} is too small for spots {margin:.0f} px from the edges")

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    code_array = make_codebook_array(list(targets), n_rounds, n_channels, seed=seed)
    codes = {
        entry["target"]: [cw["c"] for cw in sorted(entry["codeword"], key=lambda c: c["r"])]
        for entry in code_array
    }
    target_names = [entry["target"] for entry in code_array]

    # FOVs on a grid, in the order given: row-major, square-ish (overlapping by ``overlap`` px).
    columns = int(np.ceil(np.sqrt(len(fov_names))))
    overlap = int(overlap)
    if not 0 <= overlap < min(height, width) / 2:
        raise ValueError(f"overlap {overlap} px: use 0 to less than half of {shape}")
    planned = None
    if overlap:
        planned = _plan_overlapping_spots(np.random.default_rng([seed, 2]), fov_names, columns, (height, width),
                                          overlap, margin, 4 * spot_sigma + 2, n_spots, empty_fovs,
                                          target_names, spot_amplitude)
    primary: dict[tuple[int, int, int], np.ndarray] = {}
    dots: dict[int, np.ndarray] = {}
    nuclei: dict[int, np.ndarray] = {}
    nuclei_rng = np.random.default_rng([seed, 1])
    nucleus_radius = max(3.0, min(height, width) / 16)
    coords: dict[int, dict] = {}
    truth_rows: list[dict] = []
    for index, name in enumerate(fov_names):
        row, col = divmod(index, columns)
        x_min = col * (width - overlap) * pixel_size
        y_min = row * (height - overlap) * pixel_size
        coords[index] = {
            Coordinates.X: (x_min, x_min + (width - 1) * pixel_size),
            Coordinates.Y: (y_min, y_min + (height - 1) * pixel_size),
            Coordinates.Z: (0.0, 0.0),
        }
        if planned is None:
            n = 0 if name in empty_fovs else int(n_spots)
            positions = _place_spots(rng, n, (height, width), margin, min_sep=4 * spot_sigma + 2)
            spot_targets = rng.choice(target_names, size=n) if n else np.array([], dtype=str)
            amplitudes = spot_amplitude * rng.uniform(0.6, 1.4, size=n)
        else:
            positions, spot_targets, amplitudes = planned[index]
        shifts = np.vstack(
            [[0.0, 0.0], rng.uniform(-max_shift, max_shift, size=(n_rounds - 1, 2))]
        ).round(2)
        xs, ys = positions[:, 0], positions[:, 1]
        for x, y, target in zip(xs, ys, spot_targets, strict=True):
            truth_rows.append({
                "fov": name,
                "target": str(target),
                "x": round(float(x), 3),
                "y": round(float(y), 3),
                "xc": round(x_min + float(x) * pixel_size, 4),
                "yc": round(y_min + float(y) * pixel_size, 4),
            })
        if planned is not None:  # this FOV also images its neighbours' spots in the overlaps
            xs, ys, spot_targets, amplitudes = _seen_by(planned, index, columns, (height, width), overlap,
                                                        max_shift + 4 * spot_sigma)
            n = len(xs)
        bg = _background(rng, (height, width), background)
        dots[index] = _to_uint16(
            rng, bg + _render((height, width), xs, ys, amplitudes, spot_sigma), noise
        )
        nuclei[index] = _to_uint16(
            nuclei_rng,
            bg + _render_nuclei(nuclei_rng, (height, width), nuclei_per_fov, nucleus_radius),
            noise,
        )
        for r in range(n_rounds):
            dx, dy = shifts[r]
            round_amps = amplitudes * rng.uniform(0.8, 1.2, size=n)  # per-round efficiency
            spot_channels = np.array([codes[t][r] for t in spot_targets], dtype=int)
            for ch in range(n_channels):
                gain = np.where(
                    spot_channels == ch, 1.0,
                    np.where(np.abs(spot_channels - ch) == 1, bleed_through, 0.0),
                )
                signal = _render(
                    (height, width), xs + dx, ys + dy, round_amps * gain, spot_sigma
                )
                primary[(index, r, ch)] = _to_uint16(rng, bg * (0.8 + 0.1 * ch) + signal, noise)

    class PrimaryFetcher:
        def get_tile(self, fov_id, round_label, ch_label, zplane_label):
            return _Tile(primary[(fov_id, round_label, ch_label)], coords[fov_id])

    class DotsFetcher:
        def get_tile(self, fov_id, round_label, ch_label, zplane_label):
            return _Tile(dots[fov_id], coords[fov_id])

    class NucleiFetcher:
        def get_tile(self, fov_id, round_label, ch_label, zplane_label):
            return _Tile(nuclei[fov_id], coords[fov_id])

    # The builder names partitions fov_000, fov_001, ...; name their files after the real
    # FOV names here, and rename the partitions in the image manifests below.
    builder_names = {f"fov_{i:03}": name for i, name in enumerate(fov_names)}
    file_parts: dict[str, str] = {}
    for builder_name, name in builder_names.items():
        part = _safe_file_part(name)
        while part in file_parts.values():
            part += "_"
        file_parts[builder_name] = part

    class NamedWriterContract(WriterContract):
        def partition_url_generator(self, parent_partition_url: str, partition_name: str):
            return super().partition_url_generator(
                parent_partition_url, file_parts.get(partition_name, partition_name)
            )

    # Rewriting a demo: drop the files an earlier one wrote (only those), so that no tile of
    # a FOV that no longer exists lingers.
    for pattern in ("primary*.json", "dots*.json", "nuclei*.json", "primary-*.tiff", "dots-*.tiff",
                    "nuclei-*.tiff",
                    "experiment.json", "codebook.json", GROUND_TRUTH_NAME):
        for stale in out_dir.glob(pattern):
            stale.unlink()
    write_experiment_json(
        str(out_dir),
        len(fov_names),
        ImageFormat.TIFF,
        primary_image_dimensions={Axes.ROUND: n_rounds, Axes.CH: n_channels, Axes.ZPLANE: 1},
        aux_name_to_dimensions={name: {Axes.ROUND: 1, Axes.CH: 1, Axes.ZPLANE: 1}
                                for name in ("dots", "nuclei")},
        primary_tile_fetcher=PrimaryFetcher(),
        aux_tile_fetcher={"dots": DotsFetcher(), "nuclei": NucleiFetcher()},
        default_shape={Axes.Y: height, Axes.X: width},
        writer_contract=NamedWriterContract(),
    )
    for image_name in ("primary", "dots", "nuclei"):
        manifest_path = out_dir / f"{image_name}.json"
        manifest = json.loads(manifest_path.read_text())
        manifest["contents"] = {
            builder_names.get(key, key): value for key, value in manifest["contents"].items()
        }
        manifest_path.write_text(json.dumps(manifest, indent=4, sort_keys=True))

    # The builder writes a placeholder codebook: replace it with the real one.
    Codebook.from_code_array(code_array).to_json(str(out_dir / "codebook.json"))

    truth = pd.DataFrame(truth_rows, columns=list(GROUND_TRUTH_COLUMNS))
    truth.to_csv(out_dir / GROUND_TRUTH_NAME, index=False)
    return out_dir / "experiment.json"


def widen_experiment(experiment_json, n_fovs: int, name: str | None = None) -> Path:
    """An experiment of ``n_fovs`` FOVs beside ``experiment_json``, reusing its tile sets.

    FOV ``fov_00000``, ``fov_00001``, ... points at the original FOVs' tile-set documents in
    turn, so experiments of any size hold the same images: what changes with ``n_fovs`` is
    only the size of the collection documents (for benchmarks and tests of what a worker reads).
    Writes ``<name>.json`` and one ``<name>-<image type>.json`` per image type; returns the first.
    """
    experiment_json = Path(experiment_json)
    name = name or f"experiment-{n_fovs}"
    doc = json.loads(experiment_json.read_text())
    for image_type, ref in doc["images"].items():
        collection = json.loads((experiment_json.parent / ref).read_text())
        originals = [collection["contents"][key] for key in sorted(collection["contents"])]
        collection["contents"] = {f"fov_{i:05d}": originals[i % len(originals)] for i in range(n_fovs)}
        widened = f"{name}-{image_type}.json"
        (experiment_json.parent / widened).write_text(json.dumps(collection, indent=1))
        doc["images"][image_type] = widened
    out = experiment_json.parent / f"{name}.json"
    out.write_text(json.dumps(doc, indent=4))
    return out
