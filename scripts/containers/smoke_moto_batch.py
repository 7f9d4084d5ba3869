#!/usr/bin/env python3
"""Smoke test: moto's Batch runs real containers through podman's Docker API.

    .venv/bin/python scripts/containers/smoke_moto_batch.py --state-dir build/e2e-containers \
        [--image localhost/starfish-batch-process-fov:e2e] [--timeout 300] [--worker-check]

Needs the image in the podman storage of STATE_DIR (`make e2e-setup`). Starts the podman API
service if it is not running (and stops it again), starts a moto server on 127.0.0.1 with
Batch in Docker mode, creates a compute environment, job queue and job definition, submits an
array job of size 2 and a job that depends on it, follows both until they finish, and checks
that the containers' output is in CloudWatch logs /aws/batch/job. With --worker-check it also
runs the image's own CMD (`process-fov`) with no RUN_MANIFEST_URL and expects FAILED with a
one-line error naming it. Prints the timeline; exit status 0 when everything went as expected.
Dummy credentials only; everything it starts it stops.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _load_containers():
    spec = importlib.util.spec_from_file_location("e2e_containers", REPO_ROOT / "tests" / "e2e" / "containers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


containers = _load_containers()

HELLO = (
    "import os, sys; print('hello from', os.environ.get('AWS_BATCH_JOB_ID'), "
    "'index', os.environ.get('AWS_BATCH_JOB_ARRAY_INDEX'), 'uid', os.getuid(), "
    "'python', sys.version.split()[0])"
)
TERMINAL = {"SUCCEEDED", "FAILED"}


def log(t0: float, msg: str) -> None:
    print(f"[{time.monotonic() - t0:7.1f}s] {msg}", flush=True)


def setup_batch(moto, image: str, name: str) -> dict:
    iam, ec2, batch = moto.client("iam"), moto.client("ec2"), moto.client("batch")
    assume = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "batch.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    role = iam.create_role(RoleName=f"{name}-service", AssumeRolePolicyDocument=json.dumps(assume))
    iam.attach_role_policy(
        RoleName=f"{name}-service",
        PolicyArn="arn:aws:iam::aws:policy/service-role/AWSBatchServiceRole",
    )
    ce = batch.create_compute_environment(
        computeEnvironmentName=f"{name}-ce",
        type="UNMANAGED",
        state="ENABLED",
        serviceRole=role["Role"]["Arn"],
    )
    queue = batch.create_job_queue(
        jobQueueName=f"{name}-queue",
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce["computeEnvironmentArn"]}],
    )
    jobdef = batch.register_job_definition(
        jobDefinitionName=f"{name}-jobdef",
        type="container",
        containerProperties={
            "image": image,
            "command": ["python3", "-c", HELLO],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}],
            "environment": [{"name": "SMOKE", "value": "1"}],
        },
    )
    del ec2
    return {"queue": queue["jobQueueArn"], "jobdef": jobdef["jobDefinitionArn"]}


def follow(batch, job_ids: list[str], t0: float, timeout: float) -> dict[str, str]:
    """Poll until every job is SUCCEEDED or FAILED; log each status change."""
    last: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for job in batch.describe_jobs(jobs=job_ids)["jobs"]:
            jid, status = job["jobId"], job["status"]
            if last.get(jid) != status:
                extra = ""
                if "arrayProperties" in job and job["arrayProperties"].get("statusSummary"):
                    extra = f" {job['arrayProperties']['statusSummary']}"
                reason = f" ({job['statusReason']})" if job.get("statusReason") else ""
                log(t0, f"{job['jobName']:<16} {jid:<40} {status}{reason}{extra}")
                last[jid] = status
        if len(last) == len(job_ids) and all(s in TERMINAL for s in last.values()):
            return last
        time.sleep(0.5)
    raise TimeoutError(f"jobs not finished after {timeout} s: {last}")


def log_messages(logs_client, group: str = "/aws/batch/job") -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for stream in logs_client.describe_log_streams(logGroupName=group)["logStreams"]:
        name = stream["logStreamName"]
        events = logs_client.get_log_events(logGroupName=group, logStreamName=name)["events"]
        out[name] = [e["message"] for e in events]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--state-dir", type=Path, default=containers.state_dir())
    p.add_argument("--image", default=containers.image_name("process-fov"))
    p.add_argument(
        "--as-image",
        help="tag --image under this name first (e.g. an ECR repository URL, as a Terraform job "
        "definition names it) and run that; without the tag moto's docker-py would try to pull it",
    )
    p.add_argument("--no-tag", action="store_true", help="with --as-image: do not tag (shows the pull failure)")
    p.add_argument("--timeout", type=float, default=300)
    p.add_argument(
        "--worker-check",
        action="store_true",
        help="also run the image's CMD with no RUN_MANIFEST_URL and expect FAILED",
    )
    args = p.parse_args(argv)

    reason = containers.podman_available()
    if reason:
        print(f"smoke_moto_batch: {reason}", file=sys.stderr)
        return 2
    state = args.state_dir.resolve()
    if not containers.image_exists(state, args.image):
        print(f"smoke_moto_batch: image {args.image} not in {state}: run `make e2e-setup`", file=sys.stderr)
        return 2

    image = args.image
    if args.as_image:
        if not args.no_tag:
            containers.tag_images(state, {args.image: args.as_image})
        image = args.as_image

    ok = True
    t0 = time.monotonic()
    with containers.PodmanService(state) as podman:
        log(t0, f"podman API at {podman.docker_host} (started here: {podman.started_here})")
        with containers.MotoServer(state, docker_host=podman.docker_host) as moto:
            log(t0, f"moto server at {moto.endpoint} (log {moto.log_path})")
            batch, logs_client = moto.client("batch"), moto.client("logs")
            arns = setup_batch(moto, image, "sfb-smoke")
            log(t0, "compute environment, job queue, job definition created")

            array = batch.submit_job(
                jobName="smoke-array", jobQueue=arns["queue"], jobDefinition=arns["jobdef"], arrayProperties={"size": 2}
            )
            after = batch.submit_job(
                jobName="smoke-after",
                jobQueue=arns["queue"],
                jobDefinition=arns["jobdef"],
                dependsOn=[{"jobId": array["jobId"]}],
            )
            ids = [array["jobId"], f"{array['jobId']}:0", f"{array['jobId']}:1", after["jobId"]]
            expected = dict.fromkeys(ids, "SUCCEEDED")
            if args.worker_check:
                bare = batch.submit_job(
                    jobName="smoke-worker",
                    jobQueue=arns["queue"],
                    jobDefinition=arns["jobdef"],
                    containerOverrides={"command": ["process-fov"]},
                )
                ids.append(bare["jobId"])
                expected[bare["jobId"]] = "FAILED"
            log(t0, f"submitted {ids}")

            try:
                final = follow(batch, ids, t0, args.timeout)
            except TimeoutError as exc:
                # moto never marks an array parent FAILED when a child fails, so a job that
                # depends on it waits forever: cancel what is left (moto then stops it).
                log(t0, f"MISMATCH: {exc}")
                for jid in ids:
                    batch.terminate_job(jobId=jid, reason="smoke test timed out")
                log(t0, getattr(moto, "stop_info", "FAILED"))
                return 1
            for jid, want in expected.items():
                if final[jid] != want:
                    ok = False
                    log(t0, f"MISMATCH {jid}: {final[jid]}, expected {want}")

            # The dependent job must have started after every child stopped.
            jobs = {j["jobId"]: j for j in batch.describe_jobs(jobs=ids)["jobs"]}
            children_stop = max(jobs[i].get("stoppedAt", 0) for i in ids[1:3])
            after_start = jobs[after["jobId"]].get("startedAt", 0)
            log(t0, f"children stopped at {children_stop}, dependent started at {after_start}")
            if not after_start or after_start < children_stop:
                ok = False
                log(t0, "MISMATCH: the dependent job started before the array finished")

            messages = log_messages(logs_client)
            for stream, lines in sorted(messages.items()):
                for line in lines:
                    log(t0, f"log {stream}: {line}")
            hello = [m for lines in messages.values() for m in lines if m.startswith("hello from")]
            if len(hello) < 3:
                ok = False
                log(t0, f"MISMATCH: {len(hello)} 'hello from' lines in /aws/batch/job, expected 3")
            if args.worker_check:
                named = [m for lines in messages.values() for m in lines if "RUN_MANIFEST_URL" in m]
                if not named:
                    ok = False
                    log(t0, "MISMATCH: no log line names RUN_MANIFEST_URL")
        log(t0, getattr(moto, "stop_info", "moto_server stopped"))
    log(t0, "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
