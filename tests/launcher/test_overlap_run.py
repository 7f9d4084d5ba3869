"""Overlapping FOVs through the launchers: the synthetic demo imaged with overlaps (its true spots
known) on the local executor, and the option carried by the Batch executor (in-process moto)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from starfish_batch.core import storage
from starfish_batch.core.records import FovRecord
from starfish_batch.demo.experiment import write_demo_experiment
from starfish_batch.demo.testing import synthetic_decoded_table, write_fov_table
from starfish_batch.demo.tiling import cut
from starfish_batch.launcher import cli
from starfish_batch.merge import job as merge
from tests.support import batch as tb
from tests.support.batch import aws  # noqa: F401 - the in-process moto fixture
from tests.support.workflow import ISS_RECIPE, launch, upload_tree

PIXEL = 0.5  # the demo's stage units per pixel


def _matches(truth: pd.DataFrame, spots: pd.DataFrame, within: float = 2 * PIXEL) -> list[int]:
    """For each true spot, how many merged spots of its target lie within ``within``."""
    out = []
    for row in truth.itertuples():
        same = spots[spots["target"] == row.target]
        d2 = (same["xc"] - row.xc) ** 2 + (same["yc"] - row.yc) ** 2
        out.append(int((d2 <= within**2).sum()))
    return out


@pytest.fixture(scope="module")
def overlapping_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("overlap")
    experiment = write_demo_experiment(root / "demo", fov_names=["A1", "A2"], shape=(96, 96), n_spots=10,
                                       overlap=32, seed=5)
    proc = launch("--experiment-url", experiment, "--recipe", ISS_RECIPE, "--results-url", root / "results",
                  "--run-id", "ovl", "--workers", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root, proc


def _spots(run_root: Path) -> pd.DataFrame:
    return pd.read_csv(run_root / "decoded_spots.csv.gz", dtype={"fov": str, "target": str},
                       keep_default_na=False, na_values=[""])


def test_every_true_spot_of_overlapping_fovs_appears_exactly_once(overlapping_run):
    root, proc = overlapping_run
    run_root = root / "results" / "ovl"
    truth = pd.read_csv(root / "demo" / "ground_truth.csv")
    spots = _spots(run_root)
    assert _matches(truth, spots) == [1] * len(truth)
    assert len(spots) == len(truth)
    manifest = json.loads((run_root / "manifest.json").read_text())
    assert "overlap" not in manifest and manifest["layout_sha256"]  # the default: nearest
    layout = json.loads((run_root / "fov_layout.json").read_text())
    assert set(layout["extents"]) == {"A1", "A2"}
    summary = json.loads((run_root / "summary.json").read_text())
    dropped = summary["overlap"]["transcripts_dropped"]
    assert dropped > 0
    assert f"FOVs overlap by up to 31 px (33 %): {dropped} transcripts in overlaps counted once, " \
           "by the nearest FOV" in proc.stdout
    page = (run_root / "report.html").read_text()
    assert page.count('class="own"') == 2 and "transcripts in overlaps counted once" in page
    # the same run merged as before this rule: every spot of the overlap twice
    assert merge.main(["--manifest-url", str(run_root / "manifest.json"), "--overlap", "keep-all"]) == 0
    twice = _matches(truth, _spots(run_root))
    assert max(twice) == 2 and min(twice) == 1


def test_the_batch_executor_carries_the_rule_to_the_merge(aws, tmp_path):  # noqa: F811
    """--overlap through the Batch executor: recorded in the run, read by the merge job Batch
    starts (its command and environment as moto describes it), and kept by a resume."""
    experiment = write_demo_experiment(tmp_path / "demo", fov_names=["A1", "A2"], shape=(64, 64),
                                       n_spots=2, overlap=24, seed=5)
    upload_tree(aws.s3, experiment.parent, tb.DATA_BUCKET, "exp")
    assert tb.launch(aws, "--run-id", "ovl", "--overlap", "take-max", "--no-wait", fovs=["A1", "A2"]) == 0
    manifest = tb.read_jobs_file(aws, "ovl", "manifest.json")
    assert manifest["overlap"] == "take-max" and manifest["layout_sha256"]
    layout = tb.read_jobs_file(aws, "ovl", "fov_layout.json")
    # each FOV's table as its worker would write it, cut from one whole table
    whole = synthetic_decoded_table(400, seed=2, shape=(64, 104), um_per_px=PIXEL)
    _put_tables(aws, "ovl", manifest, cut(whole, layout["extents"], um_per_px=PIXEL, seed=1))
    jobs = {j["jobId"]: j for j in tb.all_jobs(aws)}
    submitted = tb.read_jobs_file(aws, "ovl")
    merge_job = jobs[submitted["merge_job_id"]]
    command = merge_job["container"]["command"]
    assert command[0] == "merge-batch-job"
    assert merge.main(command[1:], env=tb.env_of(merge_job)) == 0
    summary = tb.read_jobs_file(aws, "ovl", "summary.json")
    assert summary["overlap"]["rule"] == "take-max" and summary["overlap"]["transcripts_dropped"] > 0
    # a resume (of a FOV whose record was lost) merges the same way
    aws.s3.delete_object(Bucket=tb.RESULTS_BUCKET, Key="runs/ovl/fovs/A2.json")
    code = cli.main(["--executor", "batch", "--tf-outputs", str(aws.outputs_file), "--resume", "ovl",
                        "--results-url", tb.RESULTS, "--no-wait", "--quiet"])
    assert code == 0
    assert tb.read_jobs_file(aws, "ovl", "manifest-resume-1.json")["overlap"] == "take-max"


def _put_tables(env, run_id: str, manifest: dict, tables: dict) -> None:
    for i, (fov, table) in enumerate(tables.items()):
        path = Path(env.tmp_path) / f"{fov}.nc"
        write_fov_table(table, path, fov)
        digest = storage.Digest.of_file(path)
        record = FovRecord(fov=fov, index=i, run_id=run_id, recipe_sha256=manifest["recipe_sha256"],
                           n_features=int(table.sizes["features"]), nc_bytes=digest.size,
                           nc_sha256=digest.sha256)
        env.s3.upload_file(str(path), tb.RESULTS_BUCKET, f"runs/{run_id}/fovs/{fov}.nc")
        env.s3.put_object(Bucket=tb.RESULTS_BUCKET, Key=f"runs/{run_id}/fovs/{fov}.json", Body=record.to_json())
