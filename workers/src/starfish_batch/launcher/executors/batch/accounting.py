"""What a Batch run used and may cost: its queue's compute environment, a job definition's
size, every attempt of its jobs, each FOV's seconds and the bill priced from them."""

from __future__ import annotations

import time

from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.core.manifest import Manifest
from starfish_batch.launcher.executors.batch import checks, usage, watch
from starfish_batch.launcher.executors.batch.checks import client_error
from starfish_batch.launcher.executors.batch.clients import BatchClients
from starfish_batch.launcher.executors.batch.jobs import SubmittedRun
from starfish_batch.launcher.pricing import Bill, bill_of


class BatchAccounting:
    """Reads the queue's compute environment and the runs' attempts, and prices them."""

    def __init__(self, aws: BatchClients, job_queue: str) -> None:
        self.aws = aws
        self.job_queue = job_queue

    def compute_environment(self) -> dict:
        """The queue's first compute environment: type, instance types and maximum vCPUs."""
        outputs = self.aws.outputs
        arn = outputs.extra.get("compute_environment_arn")
        try:
            if not arn:
                queue = checks.check_queue(self.aws.batch, outputs, self.job_queue)
                order = sorted(queue.get("computeEnvironmentOrder") or [], key=lambda c: c.get("order", 0))
                arn = order[0]["computeEnvironment"] if order else None
            found = self.aws.batch.describe_compute_environments(
                computeEnvironments=[arn]).get("computeEnvironments", []) if arn else []
        except StarfishBatchError:
            raise
        except Exception as exc:
            raise StarfishBatchError(f"cannot describe the compute environment of {self.job_queue}: "
                                     f"{client_error(exc)}") from exc
        if not found:
            raise StarfishBatchError(f"the compute environment of job queue {self.job_queue} "
                                     f"({arn or 'none in its order'}) does not exist")
        resources = found[0].get("computeResources") or {}
        return {"arn": found[0].get("computeEnvironmentArn", arn),
                "type": resources.get("type") or outputs.extra.get("compute_type") or "EC2",
                "instance_types": list(resources.get("instanceTypes") or ["optimal"]),
                "max_vcpus": int(resources.get("maxvCpus") or 0)}

    def job_size(self, arn: str) -> dict:
        """What a job definition asks for: vCPUs, memory (MiB) and, on Fargate, disk (GiB)."""
        try:
            found = self.aws.batch.describe_job_definitions(jobDefinitions=[arn]).get("jobDefinitions", [])
        except Exception as exc:
            raise StarfishBatchError(f"cannot describe job definition {arn}: {client_error(exc)}") from exc
        container = (found[0].get("containerProperties") or {}) if found else {}
        vcpus, memory = usage.resources({"container": container})
        disk = (container.get("ephemeralStorage") or {}).get("sizeInGiB")
        timeout = ((found[0].get("timeout") or {}).get("attemptDurationSeconds") if found else None)
        return {"vcpus": vcpus, "memory_mib": memory, "disk_gib": disk, "timeout_seconds": timeout,
                "image": container.get("image")}

    def attempts(self, runs: list[SubmittedRun]) -> list[dict]:
        """``describe_jobs`` of every job that can have run: array children (``<parent>:<i>``,
        AWS's documented child ids), plain process-fov jobs and the merges."""
        ids: list[str] = []
        for run in runs:
            for job in run.process_jobs:
                if job.is_array:
                    ids.extend(f"{job.job_id}:{i}" for i in range(job.size))
                else:
                    ids.append(job.job_id)
            if run.merge_job_id:
                ids.append(run.merge_job_id)
        return list(self.aws.describe(ids).values())

    def fov_seconds(self, manifest: Manifest, run: SubmittedRun) -> dict[str, float]:
        """Each FOV's last attempt, in seconds from its container's start to its stop."""
        found: dict[str, float] = {}
        now_ms = int(time.time() * 1000)
        for job in self.attempts([run]):
            if job["jobId"] == run.merge_job_id:
                continue
            offset = next(p.offset for p in run.process_jobs if job["jobId"].split(":")[0] == p.job_id)
            index = offset + (watch.child_index(job) if ":" in job["jobId"] else 0)
            attempts = usage.usages(job, now_ms)
            if attempts and index < manifest.n_jobs:
                fovs = manifest.job_fovs(index)  # a packed child's seconds, shared by its FOVs
                for i in fovs:
                    found[manifest.fovs[i]] = attempts[-1].seconds / len(fovs)
        return found

    def bill(self, runs: list[SubmittedRun], prices) -> Bill:
        """vCPU-hours, GB-hours, attempts and an estimated cost from each attempt's start and
        stop times and its job's resources, priced with ``prices`` (a ``PriceTable``)."""
        env = self.compute_environment()
        region = self.aws.outputs.region
        now_ms = int(time.time() * 1000)
        found = [u for job in self.attempts(runs) for u in usage.usages(job, now_ms)]
        return bill_of(
            found,
            lambda u: prices.hourly(env["type"], region, u.vcpus, u.memory_mib, env["instance_types"]),
            prices=prices.describe(),
            note=f"an estimate: {env['type']} in {region}, each attempt's share of "
                 f"its compute at list price; idle instances, storage and transfer are not included",
        )
