"""The demo's pixels: Gaussian spots on an uneven background, a little channel bleed-through,
DAPI-like nuclei and Poisson-like noise, quantised to uint16 as a microscope writes them.

``render_fov`` draws one FOV's ``primary`` tiles (rounds x channels, each round shifted by a
known translation), its ``dots`` anchor (every spot, round-0 frame) and its ``nuclei`` image.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from starfish_batch.demo.spots import Spots, place_spots


@dataclass(frozen=True)
class Look:
    """How every FOV's images look: the ``write_demo_experiment`` arguments that draw pixels."""

    shape: tuple[int, int]
    n_rounds: int
    n_channels: int
    max_shift: float
    spot_sigma: float
    spot_amplitude: float
    background: float
    noise: float
    bleed_through: float
    nuclei_per_fov: int

    @property
    def margin(self) -> float:
        """How far a spot stays from the edges: its shifted Gaussian stays inside every round."""
        return self.max_shift + 4 * self.spot_sigma + 2

    @property
    def min_sep(self) -> float:
        """How far apart spots are: far enough for a spot finder to tell them apart."""
        return 4 * self.spot_sigma + 2

    @property
    def reach(self) -> float:
        """How far outside a FOV a spot may be and still light some of its pixels."""
        return self.max_shift + 4 * self.spot_sigma

    @property
    def nucleus_radius(self) -> float:
        return max(3.0, min(self.shape) / 16)


class FovImages(NamedTuple):
    """One FOV's tiles: ``primary[(round, channel)]``, ``dots`` and ``nuclei``, uint16."""

    primary: dict[tuple[int, int], np.ndarray]
    dots: np.ndarray
    nuclei: np.ndarray


def render(shape: tuple[int, int], xs, ys, amplitudes, sigma: float) -> np.ndarray:
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


def background(rng: np.random.Generator, shape: tuple[int, int], level: float) -> np.ndarray:
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


def render_nuclei(rng: np.random.Generator, shape: tuple[int, int], n: int, radius: float) -> np.ndarray:
    """``n`` flat-topped discs of ``radius`` pixels with soft edges (DAPI-stained nuclei)."""
    height, width = shape
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    image = np.zeros(shape, dtype=np.float64)
    centres = place_spots(rng, n, shape, radius, min_sep=2.5 * radius)
    for cx, cy in centres:
        dist = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
        image = np.maximum(image, rng.uniform(0.5, 0.8) * np.clip((radius - dist) / 3 + 0.5, 0, 1))
    return image


def to_uint16(rng: np.random.Generator, image: np.ndarray, noise: float) -> np.ndarray:
    """Add shot-like plus read noise (in [0, 1] units) and quantise to uint16."""
    # read noise of sd ``noise``; shot noise grows with the square root of the signal.
    sd = np.sqrt(noise**2 + 0.01 * noise * np.clip(image, 0, None))
    noisy = image + rng.normal(0.0, 1.0, image.shape) * sd
    return np.round(np.clip(noisy, 0.0, 1.0) * 65535).astype(np.uint16)


def render_fov(rng: np.random.Generator, nuclei_rng: np.random.Generator, look: Look, spots: Spots,
               codes: Mapping[str, list[int]]) -> FovImages:
    """One FOV's images of ``spots`` (every spot it images), each target lit in the channel its
    code names per round. ``rng`` draws in a fixed order (shifts, background, dots, rounds), so
    the same seed gives the same images; the nuclei draw from ``nuclei_rng`` alone."""
    shifts = np.vstack(
        [[0.0, 0.0], rng.uniform(-look.max_shift, look.max_shift, size=(look.n_rounds - 1, 2))]
    ).round(2)
    xs, ys, amplitudes = spots.xs, spots.ys, spots.amplitudes
    n = len(xs)
    bg = background(rng, look.shape, look.background)
    dots = to_uint16(rng, bg + render(look.shape, xs, ys, amplitudes, look.spot_sigma), look.noise)
    nuclei = to_uint16(
        nuclei_rng,
        bg + render_nuclei(nuclei_rng, look.shape, look.nuclei_per_fov, look.nucleus_radius),
        look.noise,
    )
    primary = {}
    for r in range(look.n_rounds):
        dx, dy = shifts[r]
        round_amps = amplitudes * rng.uniform(0.8, 1.2, size=n)  # per-round efficiency
        spot_channels = np.array([codes[t][r] for t in spots.targets], dtype=int)
        for ch in range(look.n_channels):
            gain = np.where(
                spot_channels == ch, 1.0,
                np.where(np.abs(spot_channels - ch) == 1, look.bleed_through, 0.0),
            )
            signal = render(look.shape, xs + dx, ys + dy, round_amps * gain, look.spot_sigma)
            primary[(r, ch)] = to_uint16(rng, bg * (0.8 + 0.1 * ch) + signal, look.noise)
    return FovImages(primary, dots, nuclei)
