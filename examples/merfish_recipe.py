"""MERFISH on one FOV, after starfish's MERFISH documentation: pixel decoding of 16-bit codes.

High-pass, deconvolve and low-pass each image, scale every round/channel to its own
brightest pixels (the bits are imaged at different brightness), then decode every pixel
against the codebook (``DetectPixels.PixelSpotDecoder``) and keep the connected pixel groups
whose codes are close enough. Blank barcodes in the codebook decode like genes: their counts
estimate the false positive rate.
"""

import numpy as np
from starfish import Codebook, DecodedIntensityTable, FieldOfView
from starfish.image import Filter
from starfish.spots import DetectPixels
from starfish.types import Levels


def process_fov(fov: FieldOfView, codebook: Codebook) -> DecodedIntensityTable:
    images = fov.get_image(FieldOfView.PRIMARY_IMAGES)
    high_passed = Filter.GaussianHighPass(sigma=3).run(images, in_place=False)
    deconvolved = Filter.DeconvolvePSF(num_iter=15, sigma=2, level_method=Levels.SCALE_SATURATED_BY_CHUNK).run(
        high_passed, in_place=False)
    low_passed = Filter.GaussianLowPass(sigma=1).run(deconvolved, in_place=False)
    scaled = Filter.Clip(p_max=99.9, level_method=Levels.SCALE_BY_CHUNK).run(low_passed, in_place=False)
    decoder = DetectPixels.PixelSpotDecoder(
        codebook=codebook, metric="euclidean", norm_order=2, distance_threshold=0.5176,
        magnitude_threshold=0.2, min_area=2, max_area=np.inf,
    )
    decoded, _ = decoder.run(scaled)
    return decoded
