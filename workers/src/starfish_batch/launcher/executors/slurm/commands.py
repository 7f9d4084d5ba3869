"""The Slurm commands a run uses (sbatch, squeue, sacct, scontrol, scancel), run as a user would
type them on the login node: no Slurm library, no REST API, so any cluster the user can
``sbatch`` on works, whatever its version or site plugins."""

from __future__ import annotations

import os
import shutil
import subprocess

from starfish_batch.core.errors import StarfishBatchError

TIMEOUT_S = 120.0  # a busy slurmctld can take tens of seconds; longer than this, say so
ACCOUNTING_OFF = "accounting_storage/none"


def _first_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


class SlurmCommands:
    """Runs one Slurm command and returns its standard output; a failure is one line naming the
    command and what Slurm said. The environment (``SLURM_CONF`` and the rest) is the user's."""

    def __init__(self, env: dict[str, str] | None = None, timeout: float = TIMEOUT_S) -> None:
        self.env = env
        self.timeout = timeout

    def run(self, command: str, *args: str, input: str | None = None, check: bool = True) -> str:
        if shutil.which(command, path=(self.env or os.environ).get("PATH")) is None:
            raise StarfishBatchError(
                f"`{command}` is not on PATH: the Slurm executor runs on a machine where Slurm's "
                "commands work (a cluster's login node); load the cluster's slurm module, or use "
                "--executor local")
        try:
            done = subprocess.run([command, *args], input=input, capture_output=True, text=True,
                                  env=self.env, timeout=self.timeout, stdin=None if input is not None
                                  else subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise StarfishBatchError(f"`{command}` did not answer in {self.timeout:.0f} s: "
                                     "is the cluster's controller (slurmctld) up?") from None
        if check and done.returncode != 0:
            said = _first_line(done.stderr) or _first_line(done.stdout) or f"exit status {done.returncode}"
            raise StarfishBatchError(f"{command} {' '.join(args[:3])}{' ...' if len(args) > 3 else ''} "
                                     f"failed: {said}")
        return done.stdout

    def config(self) -> dict[str, str]:
        """``scontrol show config`` as a dict (MaxArraySize, AccountingStorageType, ...)."""
        found: dict[str, str] = {}
        for line in self.run("scontrol", "show", "config").splitlines():
            if " = " in line:
                key, value = line.split(" = ", 1)
                found[key.strip()] = value.strip()
        return found

    def sbatch(self, script: str, options: list[str]) -> str:
        """Submit ``script`` (given on standard input) with ``options``; returns the job id."""
        out = self.run("sbatch", "--parsable", *options, input=script).strip()
        job_id = out.split(";", 1)[0].strip()  # --parsable: "<id>" or "<id>;<cluster>"
        if not job_id.isdigit():
            raise StarfishBatchError(f"sbatch answered {out!r}, not a job id")
        return job_id

    def scancel(self, job_ids: list[str]) -> None:
        """Cancel exactly these jobs (never by name or user: only this run's)."""
        if job_ids:
            self.run("scancel", *job_ids, check=False)
