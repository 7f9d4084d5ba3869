"""The ISS recipe of starfish's tutorial with cells: nuclei segmented, spots assigned to them.

starfish-batch loads this file and calls ``process_fov(fov, codebook)`` once per FOV. It is
``iss_recipe.py`` (register, filter, find spots on ``dots``, decode with
``PerRoundMaxChannel``; see that file for the steps and their parameters) followed by the
last steps of starfish's ISS pipeline:

5. segment: ``Segment.Watershed(nuclei_threshold=0.16, input_threshold=0.22,
   min_distance=57)``, seeded by the ``nuclei`` image and grown over the registered primary
   images' stain (the parameters of starfish's ISS tutorial);
6. assign: ``AssignTargets.Label`` gives each feature the ``cell_id`` of the mask it lies in
   (``nan`` outside every cell).

With ``cell_id`` in the tables the merge also writes ``cells.h5ad`` (cells x targets).
The experiment needs a ``nuclei`` image (the bundled demo has one). A FOV without spots
returns an empty table that has a ``cell_id`` coordinate too.

Nothing runs at import time.
"""

from __future__ import annotations

import numpy as np
from starfish import Codebook, DecodedIntensityTable, FieldOfView
from starfish.image import ApplyTransform, Filter, LearnTransform, Segment
from starfish.spots import AssignTargets, DecodeSpots, FindSpots
from starfish.types import STARFISH_EXTRAS_KEY, Axes, Features

NUCLEI_THRESHOLD = 0.16
STAIN_THRESHOLD = 0.22
MIN_NUCLEUS_DISTANCE = 57


def process_fov(fov: FieldOfView, codebook: Codebook) -> DecodedIntensityTable:
    """Decode one FOV of ISS data, then give each feature the id of the cell it lies in."""
    decoded, registered = _decode(fov, codebook)
    nuclei = fov.get_image("nuclei")
    masks = Segment.Watershed(
        nuclei_threshold=NUCLEI_THRESHOLD,
        input_threshold=STAIN_THRESHOLD,
        min_distance=MIN_NUCLEUS_DISTANCE,
    ).run(registered, nuclei)
    return AssignTargets.Label().run(masks, decoded)


def _decode(fov: FieldOfView, codebook: Codebook) -> tuple[DecodedIntensityTable, object]:
    """iss_recipe.py's steps 1-4; also returns the registered primary images (the stain)."""
    primary = fov.get_image(FieldOfView.PRIMARY_IMAGES)
    dots = fov.get_image("dots")

    # 1. Registration: each round's max projection (over channels and z) against dots.
    reference = dots.reduce({Axes.ROUND, Axes.CH, Axes.ZPLANE}, func="max")
    learn_translation = LearnTransform.Translation(
        reference_stack=reference, axes=Axes.ROUND, upsampling=1000
    )
    transforms = learn_translation.run(primary.reduce({Axes.CH, Axes.ZPLANE}, func="max"))
    registered = ApplyTransform.Warp().run(primary, transforms_list=transforms)

    # 2. Remove background larger than the amplicons.
    tophat = Filter.WhiteTophat(masking_radius=15, is_volume=False)
    filtered = tophat.run(registered)
    filtered_dots = tophat.run(dots)

    # 3. Find amplicons on the anchor image, measure them in every round and channel.
    detector = FindSpots.BlobDetector(
        min_sigma=1,
        max_sigma=10,
        num_sigma=30,
        threshold=0.01,
        measurement_type="mean",
    )
    dots_max = filtered_dots.reduce((Axes.ROUND, Axes.CH, Axes.ZPLANE), func="max")  # numpy's max
    spots = detector.run(image_stack=filtered, reference_image=dots_max)

    # 4. Decode: in each round, the brightest channel.
    if _count_spots(spots) == 0:
        return _empty_decoded_table(filtered, spots), registered
    return DecodeSpots.PerRoundMaxChannel(codebook=codebook).run(spots=spots), registered


def _count_spots(spots) -> int:
    """Spots found on the reference image (the same set is measured in every round/channel)."""
    return max((len(result.spot_attrs.data) for _, result in spots.items()), default=0)


def _empty_decoded_table(stack, spots) -> DecodedIntensityTable:
    """A 0-feature DecodedIntensityTable shaped like the decoder's output.

    It has the same dimensions (features, r, c), the same coordinates on ``features``
    (pixel and physical positions, radius, target, distance, passes_thresholds) and the
    same dtypes as a non-empty table, so that tables from many FOVs concatenate, and the
    same provenance log attribute.
    """
    rounds = list(stack.axis_labels(Axes.ROUND))
    channels = list(stack.axis_labels(Axes.CH))
    data = np.zeros((0, len(rounds), len(channels)), dtype=np.float32)
    int_coords = ("z", "y", "x", "spot_id", "z_min", "z_max", "y_min", "y_max", "x_min", "x_max")
    float_coords = ("radius", "xc", "yc", "zc", "distance")
    features_coords = {name: np.zeros(0, dtype=np.int64) for name in int_coords}
    features_coords.update({name: np.zeros(0, dtype=np.float64) for name in float_coords})
    features_coords["intensity"] = np.zeros(0, dtype=np.float32)
    features_coords[Features.TARGET] = np.zeros(0, dtype="<U1")
    features_coords[Features.PASSES_THRESHOLDS] = np.zeros(0, dtype=bool)
    coords = {
        Features.AXIS: np.arange(0),
        Axes.ROUND.value: np.asarray(rounds, dtype=np.int64),
        Axes.CH.value: np.asarray(channels, dtype=np.int64),
    }
    coords.update({name: (Features.AXIS, values) for name, values in features_coords.items()})
    return DecodedIntensityTable(
        data=data,
        coords=coords,
        dims=(Features.AXIS, Axes.ROUND.value, Axes.CH.value),
        attrs={STARFISH_EXTRAS_KEY: spots.log.encode()},
    )
