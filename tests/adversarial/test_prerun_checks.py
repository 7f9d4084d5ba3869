"""What the launcher refuses before any worker starts (issue 30, items 6 and 7): a codebook made
for other rounds or channels than the images, and a FOV name that is not valid Unicode. Each is
one line naming the file at fault, with no traceback and nothing started."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support import hostile

RECIPE = hostile.FAST_TABLE + "\n\ndef process_fov(fov, codebook):\n    return table(fov, codebook)\n"


@pytest.fixture
def experiment(two_fovs, tmp_path) -> Path:
    """A copy of the two-FOV experiment, to damage."""
    shutil.copytree(two_fovs.parent, tmp_path / "exp")
    (tmp_path / "recipe.py").write_text(RECIPE)
    return tmp_path / "exp" / "experiment.json"


def _run(experiment: Path, tmp_path: Path):
    proc = hostile.launch("--experiment-url", experiment, "--recipe", tmp_path / "recipe.py",
                             "--results-url", tmp_path / "results", "--run-id", "checked",
                             token=hostile.marker())
    return proc


@pytest.mark.parametrize("axis, value, words", [("r", 4, "5 rounds where the primary images of FOV A1 have 4"),
                                                ("c", 5, "6 channels where the primary images of FOV A1 have 4")])
def test_a_codebook_for_other_rounds_or_channels_is_refused_before_the_run(experiment, tmp_path, axis, value, words):
    codebook = experiment.parent / "codebook.json"
    doc = json.loads(codebook.read_text())
    doc["mappings"][0]["codeword"].append({"r": 0, "c": 0, axis: value, "v": 1.0})
    codebook.write_text(json.dumps(doc))
    proc = _run(experiment, tmp_path)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"starfish_workflow.py: error: codebook {codebook} does not fit the images: it has {words}"]
    assert not (tmp_path / "results" / "checked").exists()  # nothing written, no worker started


def test_a_fov_name_that_is_not_unicode_is_one_line_naming_the_collection(experiment, tmp_path):
    for collection in experiment.parent.glob("*.json"):
        text = collection.read_text()
        if '"A2":' in text:  # the JSON escape of a lone surrogate: valid JSON, not valid Unicode
            collection.write_text(text.replace('"A2":', '"A2\\udc80":'))
    proc = _run(experiment, tmp_path)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"starfish_workflow.py: error: experiment {experiment}: FOV name A2\\udc80 in ")
    assert lines[0].endswith("is not usable: it is not valid Unicode: a lone surrogate (\\udc80) at "
                             "character 3; rename it")
