"""The checks a Batch run passes before anything is uploaded or submitted: the URLs the
containers will use, and the queue and job definitions in the outputs' region."""

from __future__ import annotations

from starfish_batch.core import storage
from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.core.manifest import Manifest
from starfish_batch.launcher.tf_outputs import TfOutputs


def client_error(exc: Exception) -> str:
    """botocore's error code and message, else the first line of the exception."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        err = response.get("Error", {})
        text = f"{err.get('Code', '')}: {err.get('Message', '')}".strip(": ")
        if text:
            return text
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _arn_region(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[3] if arn.startswith("arn:") and len(parts) > 5 else None


def preflight(batch, outputs: TfOutputs, job_queue: str, manifest: Manifest) -> list[str]:
    """Everything that can be checked before anything is uploaded or submitted; returns warnings."""
    if not storage.is_s3(manifest.results_url):
        raise StarfishBatchError(
            f"--results-url {manifest.results_url} is a local path: workers on AWS Batch run "
            f"in containers and cannot write it; use an s3:// URL, e.g. "
            f"s3://{outputs.results_bucket}"
        )
    if not manifest.experiment_url.startswith(("s3://", "https://", "http://")):
        raise StarfishBatchError(
            f"--experiment-url {manifest.experiment_url} is a local path: workers on AWS Batch "
            "cannot read it; upload the experiment to S3 (or serve it over https://) and pass "
            "that URL"
        )
    warnings = []
    bucket = storage.split_s3(manifest.results_url)[0]
    if bucket != outputs.results_bucket:
        warnings.append(f"warning: results bucket {bucket} is not the module's results bucket "
                        f"{outputs.results_bucket}; the jobs' role may not be allowed to write it")
    check_queue(batch, outputs, job_queue)
    check_job_definitions(batch, outputs)
    return warnings


def _check_region(outputs: TfOutputs, what: str, arn: str) -> None:
    region = _arn_region(arn)
    if region is not None and region != outputs.region:
        raise StarfishBatchError(
            f"{what} {arn} is in region {region}, but the Terraform outputs "
            f"({outputs.source}) are for region {outputs.region}"
        )


def check_queue(batch, outputs: TfOutputs, queue: str) -> dict:
    """The queue exists in the outputs' region and is ENABLED and VALID."""
    _check_region(outputs, "job queue", queue)
    try:
        found = batch.describe_job_queues(jobQueues=[queue]).get("jobQueues", [])
    except Exception as exc:
        raise StarfishBatchError(
            f"cannot describe job queue {queue} in {outputs.region}: {client_error(exc)}"
        ) from exc
    found = [q for q in found if queue in (q.get("jobQueueArn"), q.get("jobQueueName"))]
    if not found:
        source = "--job-queue" if queue != outputs.job_queue_arn else outputs.source
        raise StarfishBatchError(
            f"job queue {queue} (from {source}) does not exist in region "
            f"{outputs.region}; check the name, or re-apply the Terraform module"
        )
    q = found[0]
    if q.get("state") != "ENABLED" or q.get("status") not in ("VALID", "UPDATING"):
        raise StarfishBatchError(
            f"job queue {queue} is {q.get('state')}/{q.get('status')} "
            f"({q.get('statusReason', 'no reason given')}); it must be ENABLED and VALID"
        )
    return q


def check_job_definitions(batch, outputs: TfOutputs) -> None:
    """Both job definitions of the outputs exist (ACTIVE) in the outputs' region."""
    wanted = {
        "process_fov_job_definition_arn": outputs.process_fov_job_definition_arn,
        "merge_job_definition_arn": outputs.merge_job_definition_arn,
    }
    for name, arn in wanted.items():
        _check_region(outputs, f"job definition {name}", arn)
    try:
        found = batch.describe_job_definitions(
            jobDefinitions=list(wanted.values())).get("jobDefinitions", [])
    except Exception as exc:
        raise StarfishBatchError(
            f"cannot describe job definitions in {outputs.region}: {client_error(exc)}"
        ) from exc
    active = {d.get("jobDefinitionArn") for d in found if d.get("status", "ACTIVE") == "ACTIVE"}
    for name, arn in wanted.items():
        if arn not in active:
            raise StarfishBatchError(
                f"job definition {arn} ({name} in {outputs.source}) does not exist or is "
                f"not ACTIVE in region {outputs.region}; re-apply the Terraform module"
            )
