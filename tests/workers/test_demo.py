"""The synthetic demo experiment, the tutorial's ISS recipe on it, and the scoring."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from starfish_batch.core.recipe import compile_recipe
from starfish_batch.demo.experiment import DEFAULT_FOV_NAMES, GROUND_TRUTH_COLUMNS, write_demo_experiment
from starfish_batch.launcher.score import score, spots_from_table
from tests.support import REPO_ROOT, load_script

FOV_NAMES = ["A1", "tile-7.b", "empty"]
SHAPE = (128, 128)
N_SPOTS = 25


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    write_demo_experiment(
        out, fov_names=FOV_NAMES, shape=SHAPE, n_spots=N_SPOTS, empty_fovs=["empty"], seed=3
    )
    return out


@pytest.fixture(scope="module")
def experiment(demo_dir):
    import starfish  # lazy: import starfish takes seconds

    return starfish.Experiment.from_json(str(demo_dir / "experiment.json"))


@pytest.fixture(scope="module")
def recipe():
    path = REPO_ROOT / "examples" / "iss_recipe.py"
    return compile_recipe(path.read_bytes(), str(path))


@pytest.fixture(scope="module")
def decoded(experiment, recipe):
    """The recipe's output on every demo FOV, computed once."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {name: recipe.process_fov(experiment[name], experiment.codebook)
                for name in ("A1", "empty")}


def test_demo_is_a_valid_experiment(demo_dir, experiment):
    assert sorted(experiment.keys()) == sorted(FOV_NAMES)
    targets = set(experiment.codebook.coords["target"].values.tolist())
    assert "PLEASE_REPLACE_ME" not in targets
    assert len(targets) >= 8
    # one channel per round, distinct codes
    codebook = experiment.codebook.transpose("target", "r", "c").values
    assert (codebook.sum(axis=2) == 1).all()
    codes = codebook.argmax(axis=2)  # (target, round) -> channel
    assert len({tuple(c) for c in codes}) == len(targets)

    fov = experiment["tile-7.b"]
    primary = fov.get_image("primary")
    assert (primary.num_rounds, primary.num_chs, primary.num_zplanes) == (4, 4, 1)
    assert primary.xarray.sizes["y"] == SHAPE[0] and primary.xarray.sizes["x"] == SHAPE[1]
    dots = fov.get_image("dots")
    assert (dots.num_rounds, dots.num_chs, dots.num_zplanes) == (1, 1, 1)

    truth = pd.read_csv(demo_dir / "ground_truth.csv")
    assert list(truth.columns) == list(GROUND_TRUTH_COLUMNS)
    assert truth.groupby("fov").size().to_dict() == {"A1": N_SPOTS, "tile-7.b": N_SPOTS}
    assert set(truth["target"]) <= targets

    # physical coordinates: the truth agrees with the tiles, and FOVs do not overlap
    extents = {}
    for name in FOV_NAMES:
        xa = experiment[name].get_image("dots").xarray
        xc, yc = xa.coords["xc"].values, xa.coords["yc"].values
        extents[name] = (xc.min(), xc.max(), yc.min(), yc.max())
        rows = truth[truth["fov"] == name]
        np.testing.assert_allclose(rows["xc"], np.interp(rows["x"], np.arange(len(xc)), xc),
                                   atol=1e-3)
        np.testing.assert_allclose(rows["yc"], np.interp(rows["y"], np.arange(len(yc)), yc),
                                   atol=1e-3)
    boxes = list(extents.values())
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert a[1] < b[0] or b[1] < a[0] or a[3] < b[2] or b[3] < a[2], (a, b)


def test_default_fov_names_are_not_fov_000_style(tmp_path):
    assert DEFAULT_FOV_NAMES[:4] == ("A1", "A2", "B1", "B2")
    with pytest.raises(ValueError, match="unique"):
        write_demo_experiment(tmp_path, fov_names=["A1", "A1"])
    with pytest.raises(ValueError, match="do not exist"):
        write_demo_experiment(tmp_path, fov_names=["A1"], empty_fovs=["B9"])


def test_iss_recipe_finds_the_demo_spots(demo_dir, decoded):
    called = spots_from_table(decoded["A1"], fov="A1")
    truth = pd.read_csv(demo_dir / "ground_truth.csv")
    result = score(called, truth[truth["fov"] == "A1"])
    assert result["n_truth"] == N_SPOTS
    assert result["recall"] >= 0.9, result
    assert result["precision"] >= 0.9, result


def test_iss_recipe_on_a_fov_without_spots(decoded):
    empty, full = decoded["empty"], decoded["A1"]
    assert type(empty).__name__ == "DecodedIntensityTable"
    assert empty.sizes["features"] == 0
    # Same dimensions and coordinates as a table with spots, so FOV tables concatenate.
    assert empty.dims == full.dims
    assert set(empty.coords) == set(full.coords)
    for name in empty.coords:
        if name != "target":  # a unicode string either way, its width varies
            assert empty.coords[name].dtype == full.coords[name].dtype, name
    tables = []
    for name, table in (("empty", empty), ("A1", full)):
        table = table.copy()
        table.coords["fov"] = ("features", np.full(table.sizes["features"], name))
        tables.append(table)
    merged = xr.concat(tables, dim="features")
    assert merged.sizes["features"] == full.sizes["features"]
    assert spots_from_table(empty, fov="empty").empty


def _starfish_calls_while_loading(source: bytes, url: str) -> list[str]:
    """Every starfish function called while the recipe's module is loaded (starfish itself is
    already imported, so an import in the recipe calls nothing)."""
    import starfish  # lazy: import starfish takes seconds

    root = str(Path(starfish.__file__).parent)
    called: list[str] = []

    def profile(frame, event, arg):
        if event == "call" and frame.f_code.co_filename.startswith(root):
            called.append(f"{frame.f_code.co_filename[len(root):]}:{frame.f_code.co_name}")

    sys.setprofile(profile)
    try:
        recipe = compile_recipe(source, url)
    finally:
        sys.setprofile(None)
    assert recipe.process_fov.__name__ == "process_fov"
    return called


@pytest.mark.parametrize("name", ["iss_recipe.py", "iss_cells_recipe.py", "merfish_recipe.py"])
def test_recipe_module_runs_nothing_at_import(name):
    source = (REPO_ROOT / "examples" / name).read_bytes()
    _starfish_calls_while_loading(source, name)  # the first load may fill starfish's lazy caches
    assert _starfish_calls_while_loading(source, name) == []
    # The check sees work done at import: a recipe that builds its filter at module level.
    eager = source + b"\nfrom starfish.image import Filter\nEAGER = Filter.WhiteTophat(masking_radius=15)\n"
    assert _starfish_calls_while_loading(eager, name)


def test_score_matches_one_to_one_and_needs_the_right_target():
    truth = pd.DataFrame({
        "fov": ["a", "a", "a", "b"],
        "target": ["X", "Y", "X", "X"],
        "x": [10.0, 50.0, 90.0, 10.0],
        "y": [10.0, 50.0, 90.0, 10.0],
    })
    called = pd.DataFrame({
        "fov": ["a", "a", "a", "a", "b", "c", "a"],
        "target": ["X", "X", "X", "Z", "X", "X", None],
        # near truth 0; a duplicate of it; truth 2 too far; wrong target on truth 1;
        # FOV b right; an unknown FOV; a missing target (ignored)
        "x": [11.0, 12.0, 95.0, 50.0, 10.0, 10.0, 50.0],
        "y": [10.0, 11.0, 90.0, 50.0, 10.0, 10.0, 50.0],
    })
    result = score(called, truth, max_distance_px=3)
    assert result["true_positives"] == 2
    assert result["n_truth"] == 4
    assert result["n_called"] == 6
    assert result["recall"] == pytest.approx(0.5)
    assert result["precision"] == pytest.approx(2 / 6)
    assert result["per_target"]["X"]["true_positives"] == 2
    assert result["per_target"]["Y"]["recall"] == 0
    assert result["per_fov"]["b"]["precision"] == 1


def test_score_ignores_calls_that_fail_thresholds(tmp_path):
    truth_csv = tmp_path / "truth.csv"
    pd.DataFrame({"fov": ["A1"], "target": ["X"], "x": [5.0], "y": [5.0],
                  "xc": [2.5], "yc": [2.5]}).to_csv(truth_csv, index=False)
    called = pd.DataFrame({"fov": ["A1", "A1"], "target": ["X", "X"], "x": [5, 30],
                           "y": [5, 30], "passes_thresholds": [True, False]})
    result = score(called, truth_csv)
    assert (result["recall"], result["precision"], result["n_called"]) == (1.0, 1.0, 1)


def test_spots_from_table_uses_the_fov_coordinate_and_skips_non_calls():
    from starfish import DecodedIntensityTable  # lazy: import starfish takes seconds

    n = 4
    table = DecodedIntensityTable(
        data=np.zeros((n, 1, 1), dtype=np.float32),
        coords={
            "features": np.arange(n),
            "r": [0],
            "c": [0],
            "x": ("features", [1, 2, 3, 4]),
            "y": ("features", [5, 6, 7, 8]),
            "target": ("features", np.array(["X", "nan", "Y", "Z"], dtype=object)),
            "passes_thresholds": ("features", [True, False, True, False]),
            "fov": ("features", ["A1", "A1", "B2", "B2"]),
        },
        dims=("features", "r", "c"),
    )
    frame = spots_from_table(table)
    assert frame.to_dict("list") == {
        "fov": ["A1", "B2"], "target": ["X", "Y"], "x": [1.0, 3.0], "y": [5.0, 7.0],
    }
    no_fov = table.drop_vars("fov")
    with pytest.raises(ValueError, match="fov"):
        spots_from_table(no_fov)
    assert spots_from_table(no_fov, fov="Q")["fov"].tolist() == ["Q", "Q"]


def test_make_demo_experiment_cli(tmp_path, capsys):
    module = load_script(REPO_ROOT / "scripts" / "demo" / "make_demo_experiment.py")
    out = tmp_path / "d"
    assert module.main([str(out), "--fovs", "P1", "P2", "--size", "64", "--spots", "3",
                        "--seed", "5", "--empty-fovs", "P2"]) == 0
    assert capsys.readouterr().out.strip() == str((out / "experiment.json").resolve())
    truth = pd.read_csv(out / "ground_truth.csv")
    assert truth["fov"].tolist() == ["P1"] * 3
    assert module.main([str(out), "--fovs", "P1", "--empty-fovs", "nope"]) == 2
