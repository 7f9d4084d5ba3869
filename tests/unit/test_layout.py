"""FOV ownership where FOVs overlap (starfish_batch.core.layout): grids, odd layouts, the rule's line."""

from __future__ import annotations

import numpy as np

from starfish_batch.core.layout import KEEP_ALL, NEAREST, TAKE_MAX, FovLayout, decide
from starfish_batch.demo.tiling import grid_extents


def test_grid_overlaps_split_at_the_midline():
    ext = grid_extents((2, 2), tile=330, overlap=60)
    layout = FovLayout.build(list(ext), ext, pixel_size=1.0)
    assert layout.neighbours["fov_0000"] == ["fov_0001", "fov_0100", "fov_0101"]
    # the vertical overlap strip is x in [270, 330]: split at x = 300
    x = np.array([100.0, 280.0, 299.0, 301.0, 320.0])
    y = np.full(5, 100.0)
    assert layout.owned_mask("fov_0000", x, y).tolist() == [True, True, True, False, False]
    right = layout.owned_mask("fov_0001", np.array([280.0, 299.0, 301.0, 500.0]), np.full(4, 100.0))
    assert right.tolist() == [False, False, True, True]
    # every point of the plane the grid covers is owned by exactly one FOV
    rng = np.random.default_rng(0)
    px, py = rng.uniform(0, 600, 20_000), rng.uniform(0, 600, 20_000)
    owners = np.zeros(len(px), dtype=int)
    for fov, (x0, x1, y0, y1) in ext.items():
        inside = (px >= x0) & (px <= x1) & (py >= y0) & (py <= y1)
        mask = layout.owned_mask(fov, px[inside], py[inside])
        owners[np.flatnonzero(inside)[mask]] += 1
    assert (owners == 1).all()
    assert layout.owned_region("fov_0000") == [[0.0, 0.0], [300.0, 0.0], [300.0, 300.0], [0.0, 300.0]]
    assert layout.describe_overlap() == "FOVs overlap by up to 60 px (18 %)"
    d = decide(None, layout)
    assert d.rule == NEAREST and d.line.startswith("FOVs overlap by up to 60 px (18 %): transcripts in overlaps")


def test_round_trip_and_neighbours_of_a_large_grid():
    ext = grid_extents((60, 50), tile=100, overlap=10, um_per_px=0.5)
    layout = FovLayout.build(list(ext), ext, pixel_size=0.5)
    again = FovLayout.from_json(layout.to_json())
    assert again.neighbours == layout.neighbours
    counts = sorted({len(v) for v in layout.neighbours.values()})
    assert counts == [3, 5, 8]  # corners, edges, inside
    assert layout.describe_overlap() == "FOVs overlap by up to 10 px (10 %)"


def test_fovs_that_do_not_overlap_keep_everything():
    touching = grid_extents((2, 3), tile=100, overlap=0)  # shared edges, no area
    layout = FovLayout.build(list(touching), touching)
    assert not layout.overlaps
    d = decide(NEAREST, layout)
    assert d.rule == KEEP_ALL and "do not overlap" in d.line and not d.notable
    gaps = {"a": [0, 10, 0, 10], "b": [20, 30, 0, 10]}
    assert decide(None, FovLayout.build(["a", "b"], gaps)).rule == KEEP_ALL


def test_all_fovs_at_one_place_are_kept_with_one_line():
    layout = FovLayout.build(["a", "b", "c"], {f: [0, 10, 0, 10] for f in "abc"})
    d = decide(None, layout)
    assert d.rule == KEEP_ALL and d.notable
    assert d.line == ("overlaps: all 3 FOVs are at the same stage position (no usable coordinates): "
                      "every transcript kept (keep-all)")
    none = decide(None, FovLayout.build(["a", "b"], {}))
    assert none.rule == KEEP_ALL and "no FOV has stage coordinates" in none.line


def test_repeated_extents_and_missing_coordinates_are_kept_and_named():
    ext = {"a": [0, 100, 0, 100], "b": [90, 190, 0, 100], "c": [90, 190, 0, 100], "d": None}
    layout = FovLayout.build(list(ext), ext)
    assert set(layout.excluded) == {"b", "c"}
    assert layout.owned_mask("b", np.array([95.0]), np.array([5.0])) is None
    d = decide(None, layout)
    assert d.rule == KEEP_ALL
    assert "1 FOVs without stage coordinates keep all their transcripts (d)" in d.line
    assert "2 FOVs lie exactly on another FOV" in d.line


def test_fovs_of_different_sizes_never_lose_what_only_they_imaged():
    big = [0.0, 300.0, 0.0, 300.0]
    small = [250.0, 350.0, 100.0, 200.0]  # overlaps big's right edge
    layout = FovLayout.build(["big", "small"], {"big": big, "small": small})
    # (240, 150): only big imaged it, though small's centre (300, 150) is nearer than big's
    assert layout.owned_mask("big", np.array([240.0]), np.array([150.0])).tolist() == [True]
    # (280, 150): both imaged it, small's centre is nearer
    assert layout.owned_mask("big", np.array([280.0]), np.array([150.0])).tolist() == [False]
    assert layout.owned_mask("small", np.array([280.0]), np.array([150.0])).tolist() == [True]


def test_a_fov_inside_another_at_its_centre_owns_nothing_and_is_named():
    layout = FovLayout.build(["outer", "inner"], {"outer": [0, 100, 0, 100], "inner": [25, 75, 25, 75]})
    assert layout.owns_nothing() == {"inner": "outer"}
    assert layout.owned_region("inner") == []
    p = np.array([30.0, 50.0]), np.array([30.0, 50.0])
    assert layout.owned_mask("outer", *p).tolist() == [True, True]
    assert layout.owned_mask("inner", *p).tolist() == [False, False]


def test_take_max_and_keep_all_are_said():
    ext = grid_extents((1, 2), tile=100, overlap=20)
    layout = FovLayout.build(list(ext), ext, pixel_size=1.0)
    assert decide(TAKE_MAX, layout).rule == TAKE_MAX
    keep = decide(KEEP_ALL, layout)
    assert keep.rule == KEEP_ALL and keep.notable and "--overlap keep-all" in keep.line
