"""The e2e stack: the Terraform module applied to a moto server whose Batch runs the worker
images in podman, and what the e2e tests read back from it (tables, logs, timings). Used by
tests/e2e (the one-FOV-per-child run and the packed run)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support import DUMMY_AWS, PLUGIN_DIR
from tests.support import terraform as tfh
from tests.support.containers import image_name
from tests.support.moto import MotoServer

# The marks of a module that applies the stack: Terraform and its provider mirror are needed.
NEEDS_TERRAFORM = [
    pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed"),
    pytest.mark.skipif(not PLUGIN_DIR.is_dir(), reason=f"no Terraform provider mirror at {PLUGIN_DIR}"),
]

VENV_BIN = Path(sys.executable).parent
REGION = DUMMY_AWS["AWS_DEFAULT_REGION"]
DATA_BUCKET = "sfb-e2e-data"
RESULTS_BUCKET = "sfb-e2e-results"
RESULTS_URL = f"s3://{RESULTS_BUCKET}/runs"
# moto's Batch writes every container's output to this group, whatever the job definition's
# awslogs-group says (the module's is /aws/batch/<name>).
MOTO_LOG_GROUP = "/aws/batch/job"


class Timings:
    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.rows: list[tuple[str, float]] = []
        self.file = os.environ.get("E2E_TIMINGS")

    def say(self, text: str) -> None:
        print(f"[e2e {time.monotonic() - self.t0:7.1f}s] {text}", file=sys.stderr, flush=True)

    @contextmanager
    def phase(self, name: str):
        start = time.monotonic()
        self.say(f"{name} ...")
        try:
            yield
        finally:
            seconds = time.monotonic() - start
            self.rows.append((name, seconds))
            self.say(f"{name}: {seconds:.1f} s")
            if self.file:
                with open(self.file, "a") as fh:
                    fh.write(f"  {name}\t{seconds:.1f}\n")  # indented: a part of the pytest phase


def launcher_env(moto: MotoServer, home: Path) -> dict[str, str]:
    """Environment of the launchers: moto's endpoint, dummy credentials, nothing of the host's AWS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TF_VAR_", "DOCKER_"))}
    return env | DUMMY_AWS | {
        "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(home),
        "MPLCONFIGDIR": str(home / "mpl"),
        "AWS_ENDPOINT_URL": moto.endpoint,
    }


def apply_module(moto: MotoServer, work: Path) -> dict:
    """Copy the module, point it at moto (the Terraform tests' override), apply, return outputs."""
    module = tfh.copy_module(work / "module")
    # As the Terraform tests do: the provider on moto (providers.tf), and the moto quirks' override.
    tfh.point_at_moto(module, moto.endpoint)
    env = tfh.terraform_env(work)
    tf_vars = {
        # moto needs a service role that exists; AWS would use its service-linked role.
        "create_batch_service_linked_role": True,
        "use_default_vpc": True,
        # An existing bucket: skips the lifecycle rules the provider polls for a minute.
        "create_results_bucket": False,
        "results_bucket_name": RESULTS_BUCKET,
        "experiment_s3_locations": [f"s3://{DATA_BUCKET}"],
        # moto asks podman to run the job definition's image by exactly this name.
        "process_fov": {"image": image_name("process-fov")},
        "merge": {"image": image_name("merge-batch-job")},
        "retry_attempts": 1,
        # The containers share the host network (MOTO_DOCKER_NETWORK_MODE=host) and have no
        # instance role: they reach moto with these.
        "job_environment": {
            "AWS_ENDPOINT_URL": moto.endpoint,
            "AWS_ACCESS_KEY_ID": DUMMY_AWS["AWS_ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": DUMMY_AWS["AWS_SECRET_ACCESS_KEY"],
            "AWS_EC2_METADATA_DISABLED": "true",
            # The same BLAS kernels as the local reference run: a machine may pin OpenBLAS's
            # core type (this one sets OPENBLAS_CORETYPE), and another core type's kernels
            # round differently (registration's upsampled DFT is a matrix product).
            **{k: v for k, v in os.environ.items() if k.startswith("OPENBLAS_")},
        },
    }
    (module / "e2e.auto.tfvars.json").write_text(json.dumps(tf_vars, indent=2))
    tfh.terraform_init(module, env)
    applied = tfh.apply(module, env)
    assert applied.returncode == 0, applied.stdout[-3000:] + applied.stderr[-3000:]
    out = tfh.run_terraform(["output", "-json"], module, env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def finish(proc: subprocess.Popen, what: str, timeout: float) -> tuple[int, str, str]:
    """Wait for a launcher; on timeout stop it (by PID) and fail: it must never hang."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"{what} did not end within {timeout:.0f} s (hung?)\nstdout:\n{out}\nstderr:\n{err[-4000:]}")
    return proc.returncode, out, err


def open_table(path: Path):
    """The table as a DataArray; in its starfish provenance log, what differs between any two
    processes is left out: the "os" entries (platform and Python version: a container's and
    this machine's differ) and the addresses in the arguments' reprs ("<function mean at 0x...>")."""
    import xarray as xr  # lazy: xarray ~1.7 s
    from starfish import DecodedIntensityTable  # lazy: import starfish takes seconds

    table = xr.DataArray(DecodedIntensityTable.open_netcdf(str(path))).load()
    log = json.loads(table.attrs["starfish"])
    for entry in log.get("log", []):
        entry.pop("os", None)
    table.attrs["starfish"] = re.sub(r" at 0x[0-9a-f]+>", " at 0x...>", json.dumps(log, sort_keys=True))
    return table


def log_lines(moto: MotoServer, stream: str) -> list[str]:
    events = moto.client("logs").get_log_events(logGroupName=MOTO_LOG_GROUP, logStreamName=stream)["events"]
    return [e["message"] for e in events]
