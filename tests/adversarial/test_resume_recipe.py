"""Issue 30, case 1 (the launcher's half): a stored run rewritten to run someone else's code.

Before, ``--resume`` ran whatever recipe ``manifest.json`` named, checked only against the
digest in that same manifest: whoever could write the run could make its owner's next resume
run their code with the owner's credentials. Now a resume runs only the run's own stored
``recipe.py``, at the digest the launcher remembered at launch (or the ``--recipe-sha256`` the
scientist gives): anything else is refused in one line, and nothing runs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from starfish_batch.demo.experiment import write_demo_experiment
from starfish_batch.launcher import cli, runs
from tests.support.workflow import ISS_RECIPE


@pytest.fixture
def launched(tmp_path):
    """A run launched (checked, claimed, written) but not processed: what a resume finds."""
    experiment = write_demo_experiment(tmp_path / "exp", fov_names=["A1", "B1"], shape=(64, 64), n_spots=8, seed=3)
    results = tmp_path / "results"
    manifest, url = runs.new_run(str(experiment), str(ISS_RECIPE), str(results), run_id="pinned")
    return manifest, Path(url), results


def _evil(tmp_path: Path) -> tuple[str, str, Path]:
    marker = tmp_path / "evil-ran"
    source = f"open({str(marker)!r}, 'w').close()\ndef process_fov(fov, codebook):\n    return None\n"
    return source, hashlib.sha256(source.encode()).hexdigest(), marker


def _resume(results: Path, capsys, *extra: str) -> tuple[int, list[str]]:
    code = cli.main(["--resume", "pinned", "--results-url", str(results), "--quiet", *extra])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    return code, err


def test_a_manifest_naming_another_recipe_is_refused_and_runs_nothing(launched, tmp_path, capsys):
    manifest, url, results = launched
    source, digest, marker = _evil(tmp_path)
    elsewhere = tmp_path / "elsewhere.py"
    elsewhere.write_text(source)
    data = json.loads(url.read_text())
    data.update(recipe_url=str(elsewhere), recipe_sha256=digest)
    url.write_text(json.dumps(data, indent=2))

    code, err = _resume(results, capsys)
    assert code == 1
    assert len(err) == 1 and "cannot resume run pinned" in err[0] and "not the run's own copy" in err[0]
    assert not marker.exists()
    assert not list((results / "pinned").glob("manifest-resume-*"))


def test_the_runs_own_recipe_rewritten_with_its_digest_is_refused_and_runs_nothing(launched, tmp_path, capsys):
    manifest, url, results = launched
    source, digest, marker = _evil(tmp_path)
    (results / "pinned" / "recipe.py").write_text(source)
    data = json.loads(url.read_text())
    data["recipe_sha256"] = digest  # consistent: the old check (manifest against itself) passes
    url.write_text(json.dumps(data, indent=2))

    code, err = _resume(results, capsys)
    assert code == 1
    assert len(err) == 1 and "changed since you launched it" in err[0]
    assert not marker.exists()


def test_from_another_machine_the_digest_printed_at_launch_is_asked_for(launched, tmp_path, capsys, monkeypatch):
    manifest, url, results = launched
    monkeypatch.setenv("STARFISH_BATCH_STATE_DIR", str(tmp_path / "another-machine"))  # nothing remembered
    source, digest, marker = _evil(tmp_path)
    (results / "pinned" / "recipe.py").write_text(source)
    data = json.loads(url.read_text())
    data["recipe_sha256"] = digest
    url.write_text(json.dumps(data, indent=2))

    code, err = _resume(results, capsys)
    assert code == 1 and len(err) == 1 and "--recipe-sha256" in err[0]
    code, err = _resume(results, capsys, "--recipe-sha256", manifest.recipe_sha256[:16])
    assert code == 1 and len(err) == 1 and f"not the {manifest.recipe_sha256[:16]}... you launched" in err[0]
    assert not marker.exists()
