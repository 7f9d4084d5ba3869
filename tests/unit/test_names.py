"""FOV names are data, never paths: every name maps to a safe, unique, reversible storage key."""

from __future__ import annotations

import re

import pytest

from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.core.manifest import Manifest
from starfish_batch.core.names import decode, storage_keys

HOSTILE = ["../escape", "..", ".", ".hidden", "a/b", "/abs", "a\\b", "tab\there", "new\nline", "é-ü",
           "x" * 300, "L" * 100, "a~7E", "a~b", "trailing.", " ", "Case", "case", "CASE", "fov_001", "fov.1"]
SAFE_KEY = re.compile(r"[A-Za-z0-9_~][A-Za-z0-9_.~-]{0,99}")


def test_every_key_is_one_plain_file_name_and_unique_ignoring_case():
    keys = storage_keys(HOSTILE)
    assert set(keys) == set(HOSTILE)
    for name, key in keys.items():
        assert SAFE_KEY.fullmatch(key), (name, key)
        assert not key.startswith(".") and not key.endswith(".") and "/" not in key and "\\" not in key
    folded = [k.casefold() for k in keys.values()]
    assert len(set(folded)) == len(folded)


def test_plain_names_keep_their_names_and_others_decode_back():
    keys = storage_keys(HOSTILE)
    assert keys["fov_001"] == "fov_001" and keys["fov.1"] == "fov.1"
    assert keys["../escape"] == "~2E~2E~2Fescape"
    for name, key in keys.items():
        if "~~" not in key:  # digests (too long, or a case twin) are mapped back by the manifest
            assert decode(key) == name


def test_names_differing_in_case_get_distinct_keys_that_do_not_depend_on_each_other():
    alone = storage_keys(["Case", "other"])
    twins = storage_keys(["Case", "case", "other"])
    assert alone["Case"] == "Case"
    assert twins["Case"].casefold() != twins["case"].casefold()
    assert twins["other"] == "other"


@pytest.mark.parametrize("names, message", [
    (["a", "a"], "FOV 'a' is listed twice"),
    (["a", ""], "FOV name '' is not usable"),
])
def test_unusable_names_are_refused_naming_them(names, message):
    with pytest.raises(StarfishBatchError, match=re.escape(message)):
        storage_keys(names)


def test_the_manifest_writes_each_fov_under_its_key_inside_the_run(tmp_path):
    manifest = Manifest(run_id="r", experiment_url="/e.json", recipe_url="/r.py", recipe_sha256="0" * 64,
                        results_url=str(tmp_path), fovs=["../../escape", "a/b", ".hidden"])
    for fov in manifest.fovs:
        url = manifest.fov_url(fov, ".nc")
        assert url.startswith(str(tmp_path / "r" / "fovs") + "/")
        assert "/" not in url[len(str(tmp_path / "r" / "fovs")) + 1:]


def test_a_manifest_listing_a_fov_twice_is_refused(tmp_path):
    manifest = Manifest(run_id="r", experiment_url="/e.json", recipe_url="/r.py", recipe_sha256="0" * 64,
                        results_url=str(tmp_path), fovs=["a", "a"])
    with pytest.raises(StarfishBatchError, match="listed twice"):
        Manifest.from_json(manifest.to_json(), "m.json")
