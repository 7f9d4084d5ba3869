"""Faults end cleanly in the workers: a full disk (a real, small tmpfs) is one line naming the
path and "no space left"; a stopped or killed worker leaves no temporary file for long."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from starfish_batch.core import storage
from starfish_batch.core.manifest import Manifest
from starfish_batch.demo.testing import write_fake_run
from tests.support.faults import fill, small_tmpfs, wait_for
from tests.support.workflow import FOV_NAMES, ISS_RECIPE, write_experiment

MERGE = [sys.executable, "-m", "starfish_batch.merge.job", "--manifest-url"]
PROCESS_FOV = [sys.executable, "-m", "starfish_batch.process_fov.main", "--manifest-url"]


def _hidden(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob(".*"))


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def test_worker_on_a_full_disk_says_no_space_left(tmp_path):
    experiment = write_experiment(tmp_path / "experiment")
    with small_tmpfs(tmp_path / "disk", "2m") as disk:
        manifest = Manifest(run_id="full", experiment_url=str(experiment), recipe_url=str(ISS_RECIPE),
                            recipe_sha256=hashlib.sha256(ISS_RECIPE.read_bytes()).hexdigest(),
                            results_url=str(disk / "results"), fovs=sorted(FOV_NAMES))
        url = manifest.save()
        fill(disk, 4096)
        proc = subprocess.run(PROCESS_FOV + [url], env={**os.environ, "AWS_BATCH_JOB_ARRAY_INDEX": "0"},
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 1, proc.stderr[-2000:]
        lines = _error_lines(proc.stderr)
        fov = sorted(FOV_NAMES)[0]
        assert lines[-1] == (f"process-fov: error: FOV {fov}: cannot write {disk}/results/full/fovs/{fov}.nc: "
                             f"no space left on device"), lines[-3:]
        assert "Traceback" not in proc.stderr
        assert _hidden(disk / "results") == []  # its temporary file is gone
        assert not Path(manifest.fov_url(fov, ".json")).exists()


@pytest.mark.parametrize("leave_kb", [600, 100, 8])
def test_merge_on_a_full_disk_says_no_space_left(tmp_path, leave_kb):
    with small_tmpfs(tmp_path / "disk", "3m") as disk:
        manifest = write_fake_run(str(disk / "results"), {f"f{i}": 300 for i in range(6)})
        fill(disk, leave_kb * 1024)
        proc = subprocess.run(MERGE + [storage.join(manifest.run_root, "manifest.json")],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])  # not 139 (segfault)
        assert _error_lines(proc.stderr) == [
            f"merge-batch-job: cannot write the merge's outputs in {manifest.run_root}: "
            "no space left on device"]
        assert {p.name for p in Path(manifest.run_root).iterdir()} == {"fovs", "manifest.json"}
        assert _hidden(Path(manifest.run_root)) == []


def _merging(tmp_path: Path):
    """A merge started on a run large enough to catch it while it writes its temporary files."""
    manifest = write_fake_run(str(tmp_path / "results"), {f"f{i:02d}": 3000 for i in range(24)})
    root = Path(manifest.run_root)
    proc = subprocess.Popen(MERGE + [storage.join(manifest.run_root, "manifest.json")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert wait_for(lambda: any(".merged_decoded_fovs.nc" in n for n in _hidden(root)), 60, 0.005), \
        proc.communicate()
    return manifest, root, proc


def test_merge_stopped_with_sigterm_removes_its_temporary_files(tmp_path):
    _, root, proc = _merging(tmp_path)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert _hidden(root) == []
    assert {p.name for p in root.iterdir()} == {"fovs", "manifest.json"}


def test_temporary_files_of_a_killed_merge_are_removed_by_the_next(tmp_path):
    manifest, root, proc = _merging(tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert _hidden(root)  # SIGKILL: nothing could clean up
    again = subprocess.run(MERGE + [storage.join(manifest.run_root, "manifest.json")],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert _hidden(root) == []
    assert (root / "merged_decoded_fovs.nc").is_file()
