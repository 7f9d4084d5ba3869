"""report.html's FOV map draws where FOVs overlap and the part each one owns (summary.json's
``owned`` and ``overlaps``), and draws nothing more for FOVs that do not overlap."""

from __future__ import annotations

from starfish_batch.core.report import fov_rows
from starfish_batch.core.report.svg import fov_map


def _summary(with_overlap: bool) -> dict:
    fovs = {
        "a": {"features": 10, "spots": 9, "extent": {"xc": [0, 100], "yc": [0, 100]}},
        "b": {"features": 12, "spots": 11, "extent": {"xc": [80, 180], "yc": [0, 100]}},
    }
    if with_overlap:
        fovs["a"].update(owned=[[0, 0], [90, 0], [90, 100], [0, 100]], dropped=3,
                         overlaps=[[80, 100, 0, 100]])
        fovs["b"].update(owned=[[90, 0], [180, 0], [180, 100], [90, 100]], dropped=2)
    return {"fovs": fovs}


def test_owned_regions_and_overlaps_are_drawn():
    svg, _ = fov_map(fov_rows(["a", "b"], _summary(True)))
    assert svg.count('<polygon class="own"') == 2
    assert svg.count('<rect class="ovl"') == 1
    assert "a owns this region; 3 transcripts dropped as a neighbour&#x27;s" in svg
    assert "dashed: the part each FOV owns" in svg


def test_fovs_without_overlap_get_no_region():
    svg, _ = fov_map(fov_rows(["a", "b"], _summary(False)))
    assert 'class="own"' not in svg and 'class="ovl"' not in svg and "dashed" not in svg
