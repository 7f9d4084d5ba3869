"""The AWS Batch executor, split by job: ``jobs`` (what was submitted, and its file),
``requests`` (the ``submit_job`` requests), ``watch`` (pure functions over ``describe_jobs``
payloads) and ``executor`` (the AWS calls, returning outcome objects).

It knows AWS Batch and CloudWatch Logs, not starfish: workers get the contract's environment
(``contract.worker_env``) and do the rest.
"""

from starfish_batch.launcher.executors.batch.executor import BatchExecutor
from starfish_batch.launcher.executors.batch.jobs import ProcessJob, SubmittedRun, chunks, job_name, jobs_url_for

__all__ = ["BatchExecutor", "ProcessJob", "SubmittedRun", "chunks", "job_name", "jobs_url_for"]
