"""moto's Batch runs the worker image in podman: an array job of 2, then a job depending on it.

The ``e2e`` marker (`make e2e-smoke`, `make e2e`; root, podman): the fixtures build the images
if they are missing (minutes).
"""

from __future__ import annotations

import time

from tests.support import containers as smoke
from tests.support.containers import image_name


def test_array_then_dependent_job_run_in_containers(moto_batch_server):
    moto_batch_server.reset()
    arns = smoke.setup_batch(moto_batch_server, image_name("process-fov"), "sfb-e2e-smoke")
    batch = moto_batch_server.client("batch")
    array = batch.submit_job(
        jobName="e2e-array", jobQueue=arns["queue"], jobDefinition=arns["jobdef"], arrayProperties={"size": 2}
    )
    after = batch.submit_job(
        jobName="e2e-after", jobQueue=arns["queue"], jobDefinition=arns["jobdef"], dependsOn=[{"jobId": array["jobId"]}]
    )
    bare = batch.submit_job(
        jobName="e2e-bare-worker",
        jobQueue=arns["queue"],
        jobDefinition=arns["jobdef"],
        containerOverrides={"command": ["process-fov"]},
    )
    ids = [array["jobId"], f"{array['jobId']}:0", f"{array['jobId']}:1", after["jobId"], bare["jobId"]]
    final = smoke.follow(batch, ids, time.monotonic(), timeout=600)
    assert [final[i] for i in ids] == ["SUCCEEDED"] * 4 + ["FAILED"]

    messages = smoke.log_messages(moto_batch_server.client("logs"))
    hello = sorted(m for lines in messages.values() for m in lines if m.startswith("hello from"))
    assert len(hello) == 3
    assert all("uid 10001" in m for m in hello)  # the image's non-root user
    bare_lines = [m for name, lines in messages.items() if bare["jobId"] in name for m in lines]
    assert any("RUN_MANIFEST_URL" in m for m in bare_lines), bare_lines
