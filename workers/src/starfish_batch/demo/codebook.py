"""The demo's codebook: one channel per round per target, codes apart by 2 rounds when they fit.

The one-hot-per-round codes are what ``PerRoundMaxChannel`` decodes; keeping every two codes
at least 2 rounds apart means a single mis-called round does not silently turn one target
into another.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_TARGETS = (
    "ACTB", "GAPDH", "ERBB2", "ESR1", "KRT8", "MKI67", "CD44", "VIM", "EPCAM", "PTPRC",
)


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


def channels_per_round(code_array: list[dict]) -> dict[str, list[int]]:
    """``{target: [its channel in round 0, round 1, ...]}``: what the renderer lights."""
    return {
        entry["target"]: [cw["c"] for cw in sorted(entry["codeword"], key=lambda c: c["r"])]
        for entry in code_array
    }
