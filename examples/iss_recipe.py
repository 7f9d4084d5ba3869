"""The ISS recipe of starfish's "Processing With AWS" tutorial, for one field of view.

starfish-batch loads this file and calls ``process_fov(fov, codebook)`` once per FOV.
The steps and parameters are the tutorial's (in turn those of starfish's ISS pipeline):

1. register: learn a per-round translation of the primary images (max-projected over
   channels and z) against the ``dots`` anchor image (``upsampling=1000``), apply it (Warp);
2. filter: white top-hat, ``masking_radius=15``, on the registered primary images and on
   ``dots``;
3. find spots: ``BlobDetector(min_sigma=1, max_sigma=10, num_sigma=30, threshold=0.01)`` on
   the ``dots`` image max-projected over rounds, channels and z, then measure every round and
   channel at those spots (``measurement_type="mean"``);
4. decode: ``PerRoundMaxChannel`` with the experiment's codebook.

Differences from the tutorial, none of which changes the result on a FOV with spots:
- the tutorial also filters a ``nuclei`` image that it never uses; that step is left out
  (it costs a quarter of the filtering time, and not every experiment has ``nuclei``);
- the ``dots`` reference is max-projected over rounds, channels and z before registration
  (a no-op for the tutorial's 1-round, 1-channel, 1-plane ``dots``, needed if there are more);
- a FOV where no spot is found returns an empty (0-feature) DecodedIntensityTable that has
  the same coordinates as a non-empty one, instead of failing in the decoder.

Nothing runs at import time.
"""

from __future__ import annotations

import numpy as np
from starfish import Codebook, DecodedIntensityTable, FieldOfView
from starfish.image import ApplyTransform, Filter, LearnTransform
from starfish.spots import DecodeSpots, FindSpots
from starfish.types import STARFISH_EXTRAS_KEY, Axes, Features


def process_fov(fov: FieldOfView, codebook: Codebook) -> DecodedIntensityTable:
    """Register, filter, find spots on the dots image, and decode one FOV of ISS data."""
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
        return _empty_decoded_table(filtered, spots)
    return DecodeSpots.PerRoundMaxChannel(codebook=codebook).run(spots=spots)


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
