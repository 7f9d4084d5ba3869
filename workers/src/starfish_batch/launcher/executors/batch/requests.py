"""The ``submit_job`` requests of a run: pure functions of the manifest and the module's outputs."""

from __future__ import annotations

from dataclasses import dataclass

from starfish_batch.core.contract import MERGE, PROCESS_FOV, worker_env
from starfish_batch.core.manifest import Manifest
from starfish_batch.launcher.executors.batch.jobs import JOB_TAG, RUN_ID_TAG, SUBMITTER_TAG, chunks, job_name


@dataclass(frozen=True)
class JobTarget:
    """Where the jobs go (the queue and the two job definitions, from the Terraform outputs) and
    who sends them: ``submitter`` is the caller's aws:userid, which the submitter policy requires
    as a tag and matches on cancel; ``share_identifier`` is needed by a fair-share queue."""

    job_queue: str
    process_fov_job_definition: str
    merge_job_definition: str
    submitter: str
    share_identifier: str | None = None
    attempt_seconds: int | None = None  # --fov-timeout: each process-fov attempt's timeout


def _common(manifest: Manifest, target: JobTarget, job: str) -> dict:
    """What every job of a run carries: its tags (run, job, submitter) and, on a fair-share
    queue, its share identifier."""
    common: dict = {
        "tags": {RUN_ID_TAG: manifest.run_id, JOB_TAG: job, SUBMITTER_TAG: target.submitter},
        "propagateTags": True,
    }
    if target.share_identifier:
        common["shareIdentifier"] = target.share_identifier
    return common


def _environment(manifest: Manifest, manifest_url: str, offset: int) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in worker_env(manifest_url, manifest.sha256, offset).items()]


def process_requests(manifest: Manifest, manifest_url: str, target: JobTarget, label: str = "",
                     resources: dict[str, float] | None = None,
                     fov_timeout_seconds: int | None = None) -> list[dict]:
    """The process-fov jobs of ``manifest``: arrays of at most 10,000 children (none if no FOV
    is left), each child running ``manifest.fovs_per_job`` FOVs.

    ``resources`` ({"vcpus", "memory_mib"}) override the job definition's size (an
    out-of-memory escalation). ``fov_timeout_seconds`` (the job definition's timeout, meant for
    one FOV) becomes each packed child's attemptDurationSeconds times its FOVs."""
    parts = chunks(manifest.n_jobs)
    requests = []
    for k, (offset, size) in enumerate(parts):
        suffix = f"-part{k + 1}" if len(parts) > 1 else ""
        request = {
            "jobName": job_name(manifest.run_id, f"{label}{PROCESS_FOV}{suffix}"),
            "jobQueue": target.job_queue,
            "jobDefinition": target.process_fov_job_definition,
            "containerOverrides": {"environment": _environment(manifest, manifest_url, offset),
                                   **_resource_overrides(resources)},
            **_common(manifest, target, PROCESS_FOV),
        }
        if target.attempt_seconds:
            request["timeout"] = {"attemptDurationSeconds": int(target.attempt_seconds)}
        if size > 1:
            request["arrayProperties"] = {"size": size}
        if fov_timeout_seconds and manifest.fovs_per_job > 1:
            request["timeout"] = {"attemptDurationSeconds": int(fov_timeout_seconds) * manifest.fovs_per_job}
        requests.append(request)
    return requests


def _resource_overrides(resources: dict[str, float] | None) -> dict:
    if not resources:
        return {}
    vcpus = resources["vcpus"]
    return {"resourceRequirements": [
        {"type": "VCPU", "value": str(int(vcpus) if float(vcpus).is_integer() else vcpus)},
        {"type": "MEMORY", "value": str(int(resources["memory_mib"]))},
    ]}


def merge_request(manifest: Manifest, manifest_url: str, target: JobTarget, depends_on: list[str],
                  label: str = "") -> dict:
    """The merge job, after every process-fov job (a resume with nothing left only merges)."""
    request = {
        "jobName": job_name(manifest.run_id, f"{label}merge"),
        "jobQueue": target.job_queue,
        "jobDefinition": target.merge_job_definition,
        "containerOverrides": {"environment": _environment(manifest, manifest_url, 0)},
        **_common(manifest, target, MERGE),
    }
    if depends_on:
        request["dependsOn"] = [{"jobId": job_id} for job_id in depends_on]
    return request
