"""The AWS clients of a Batch run (Batch, CloudWatch Logs, STS, ECR) and the describe and
cancel calls every part of the executor shares, so each part reads one cached client."""

from __future__ import annotations

from collections.abc import Iterable

from starfish_batch.core import storage
from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.launcher.executors.batch import watch
from starfish_batch.launcher.executors.batch.checks import client_error
from starfish_batch.launcher.tf_outputs import TfOutputs

DESCRIBE_BATCH = 100  # describe_jobs takes at most 100 ids


def _batched(items: list[str], n: int = DESCRIBE_BATCH) -> Iterable[list[str]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


class BatchClients:
    """One client per service, in the outputs' region, made when first asked for."""

    def __init__(self, outputs: TfOutputs, session=None) -> None:
        self.outputs = outputs
        self._session = session
        self._clients: dict[str, object] = {}

    def client(self, service: str):
        """The service's client, with the storage layer's retries."""
        if service not in self._clients:
            import boto3  # lazy: boto3 takes ~0.4 s; only an AWS call needs it

            session = self._session or boto3.session.Session()
            self._clients[service] = storage.watch_retries(
                session.client(service, region_name=self.outputs.region, config=storage.botocore_config()),
                service)
        return self._clients[service]

    @property
    def batch(self):
        return self.client("batch")

    @property
    def logs(self):
        return self.client("logs")

    def describe(self, job_ids: list[str]) -> dict[str, dict]:
        """``describe_jobs`` on any number of ids, 100 a call."""
        found: dict[str, dict] = {}
        for batch in _batched(list(dict.fromkeys(job_ids))):
            for job in self.batch.describe_jobs(jobs=batch).get("jobs", []):
                found[job["jobId"]] = job
        return found

    def failed_children(self, parent_id: str) -> list[str]:
        ids: list[str] = []
        for page in self.batch.get_paginator("list_jobs").paginate(arrayJobId=parent_id, jobStatus="FAILED"):
            ids.extend(j["jobId"] for j in page.get("jobSummaryList", []))
        return ids

    def cancel(self, job_ids: list[str], reason: str) -> tuple[list[str], list[str]]:
        """Terminate the started jobs of ``job_ids`` and cancel the queued ones, in that order;
        returns (terminated, cancelled) job ids (the ended ones are left alone)."""
        described = self.describe(job_ids)
        terminated, cancelled = [], []
        for job_id in job_ids:
            info = described.get(job_id)
            if info is None or info.get("status") in watch.TERMINAL:
                continue
            try:
                if watch.is_running(info):
                    # TerminateJob also cancels what has not started (children of an array too).
                    self.batch.terminate_job(jobId=job_id, reason=reason)
                    terminated.append(job_id)
                else:
                    self.batch.cancel_job(jobId=job_id, reason=reason)
                    cancelled.append(job_id)
            except Exception as exc:
                raise StarfishBatchError(f"cannot cancel job {job_id}: {client_error(exc)}") from exc
        return terminated, cancelled
