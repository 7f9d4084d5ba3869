"""The workers against S3 (in-process moto): experiment and recipe read from S3, outputs written there."""

from __future__ import annotations

import hashlib
import json

import pytest

from starfish_batch.core.manifest import Manifest
from starfish_batch.process_fov import main as process_fov
from tests.support.workflow import EMPTY_FOV, FOV_NAMES, ISS_RECIPE, upload_tree, write_experiment


@pytest.fixture(scope="module")
def experiment_dir(tmp_path_factory):
    return write_experiment(tmp_path_factory.mktemp("experiment")).parent


def test_process_fov_reads_and_writes_s3(moto_s3, experiment_dir, tmp_path, capsys):
    from starfish import DecodedIntensityTable  # lazy: import starfish takes seconds

    moto_s3.create_bucket(Bucket="lab-data")
    moto_s3.create_bucket(Bucket="lab-results")
    upload_tree(moto_s3, experiment_dir, "lab-data", "exp1")
    recipe = ISS_RECIPE.read_bytes()
    moto_s3.put_object(Bucket="lab-results", Key="runs/r-s3/recipe.py", Body=recipe)
    manifest = Manifest(
        run_id="r-s3", experiment_url="s3://lab-data/exp1/experiment.json",
        recipe_url="s3://lab-results/runs/r-s3/recipe.py",
        recipe_sha256=hashlib.sha256(recipe).hexdigest(), results_url="s3://lab-results/runs",
        fovs=FOV_NAMES,
    )
    manifest_url = manifest.save()
    assert manifest_url == "s3://lab-results/runs/r-s3/manifest.json"

    for index in range(len(FOV_NAMES)):
        # the fallback index of moto-like emulators: <parent>:<i>
        code = process_fov.main([], env={"RUN_MANIFEST_URL": manifest_url,
                                         "AWS_BATCH_JOB_ID": f"abc-123:{index}"})
        assert code == 0, capsys.readouterr().err

    keys = {o["Key"] for o in moto_s3.list_objects_v2(Bucket="lab-results")["Contents"]}
    for fov in FOV_NAMES:
        assert f"runs/r-s3/fovs/{fov}.nc" in keys and f"runs/r-s3/fovs/{fov}.json" in keys
        record = json.loads(moto_s3.get_object(Bucket="lab-results",
                                               Key=f"runs/r-s3/fovs/{fov}.json")["Body"].read())
        assert record["fov"] == fov and record["recipe_sha256"] == manifest.recipe_sha256
        local = tmp_path / f"{fov}.nc"
        moto_s3.download_file("lab-results", f"runs/r-s3/fovs/{fov}.nc", str(local))
        table = DecodedIntensityTable.open_netcdf(str(local))
        assert set(table.coords["fov"].values.tolist()) <= {fov}
        assert table.sizes["features"] == record["n_features"]
        if fov == EMPTY_FOV:
            assert record["n_features"] == 0
        else:
            assert record["n_features"] > 10
