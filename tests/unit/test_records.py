"""The per-FOV record and summary.json as types: what one process writes, the next reads."""

from __future__ import annotations

import json

import pytest

from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.core.records import FovRecord, Summary


def test_fov_record_round_trip_and_newer_fields_ignored():
    record = FovRecord(fov="A1", recipe_sha256="ab" * 32, n_features=12, index=3, seconds=4.5,
                       tiles=17, tile_bytes=1_000, versions={"starfish": "0.4.0"})
    doc = json.loads(record.to_json())
    assert doc["tiles"] == 17 and doc["versions"] == {"starfish": "0.4.0"}
    doc["written_by_a_newer_version"] = True
    assert FovRecord.from_json(json.dumps(doc)) == record


@pytest.mark.parametrize("text, message", [
    ("{not json", r"fovs/A1.json is not JSON"),
    ("[1, 2]", r"fovs/A1.json is not a JSON object"),
    ('{"fov": "A1", "n_features": 3}', r"fovs/A1.json lacks recipe_sha256"),
])
def test_fov_record_errors_name_the_file(text, message):
    with pytest.raises(StarfishBatchError, match=message):
        FovRecord.from_json(text, "fovs/A1.json")


def test_summary_round_trip():
    summary = Summary(run_id="r", n_fovs=2, n_fovs_merged=1, n_features=5, n_spots=4,
                      missing_fovs=["B2"], targets={"EPCAM": {"features": 5, "spots": 4}},
                      fovs={"A1": {"features": 5, "spots": 4, "seconds": 1.5}})
    assert Summary.from_json(summary.to_json()) == summary
    with pytest.raises(StarfishBatchError, match="summary.json lacks n_spots"):
        Summary.from_json('{"run_id": "r", "n_fovs": 1, "n_fovs_merged": 1, "n_features": 0}', "summary.json")
