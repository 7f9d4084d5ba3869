"""Loading recipes: each mistake a scientist makes is one line that names the file."""

from __future__ import annotations

import hashlib

import pytest

from starfish_batch.core.errors import RecipeError
from starfish_batch.core.recipe import load_recipe

GOOD = b"def process_fov(fov, codebook):\n    return fov\n"


def write(tmp_path, text: bytes, name: str = "recipe.py") -> str:
    path = tmp_path / name
    path.write_bytes(text)
    return str(path)


def test_good_recipe_loads_in_isolation(tmp_path):
    a = load_recipe(write(tmp_path, GOOD, "a.py"))
    b = load_recipe(write(tmp_path, GOOD.replace(b"fov\n", b"codebook\n"), "b.py"))
    assert a.process_fov(1, 2) == 1 and b.process_fov(1, 2) == 2
    assert a.sha256 == hashlib.sha256(GOOD).hexdigest()


def test_recipe_can_use_dataclasses_and_its_own_helpers(tmp_path):
    source = (b"from dataclasses import dataclass\n@dataclass\nclass P:\n    r: int = 15\n"
              b"def helper(x):\n    return x * P().r\n"
              b"def process_fov(fov, codebook):\n    return helper(fov)\n")
    assert load_recipe(write(tmp_path, source)).process_fov(2, None) == 30


@pytest.mark.parametrize("source, message", [
    (b"def process_fov(fov, codebook)\n    return fov\n", r"recipe .*recipe.py has a syntax error at line 1"),
    (b"def run(fov, codebook):\n    return fov\n", r"recipe .*recipe.py does not define process_fov\(fov, codebook\)"),
    (b"process_fov = 3\n", r"does not define process_fov"),
    (b"def process_fov(fov):\n    return fov\n",
     r"process_fov must accept \(fov, codebook\), its signature is process_fov\(fov\)"),
    (b"import no_such_module_xyz\n", r"recipe .*recipe.py failed while loading: ModuleNotFoundError"),
])
def test_bad_recipes(tmp_path, source, message):
    with pytest.raises(RecipeError, match=message):
        load_recipe(write(tmp_path, source))


def test_missing_recipe_names_the_path(tmp_path):
    with pytest.raises(RecipeError, match=r"recipe .*nope.py cannot be read"):
        load_recipe(str(tmp_path / "nope.py"))


def test_changed_recipe_is_refused(tmp_path):
    url = write(tmp_path, GOOD)
    sha = hashlib.sha256(GOOD).hexdigest()
    assert load_recipe(url, sha).sha256 == sha
    (tmp_path / "recipe.py").write_bytes(GOOD + b"# edited\n")
    with pytest.raises(RecipeError, match=r"changed since the run started: sha256 .* is not the manifest's"):
        load_recipe(url, sha)


def test_recipe_from_s3(moto_s3):
    moto_s3.create_bucket(Bucket="recipes")
    moto_s3.put_object(Bucket="recipes", Key="r/recipe.py", Body=GOOD)
    assert load_recipe("s3://recipes/r/recipe.py").process_fov("x", None) == "x"
