"""Container plumbing of the end-to-end test: podman (Docker API), images, moto in Docker mode.

Plain helpers plus pytest fixtures. The shell scripts in scripts/containers/ do the work; this
module drives them and adds the moto server. Everything runs on this machine, binds to
127.0.0.1 or a unix socket, and is stopped by PID:

    state = Path("build/e2e-containers")               # or E2E_STATE
    env = podman_env(state)                            # CONTAINERS_CONF, ..., DOCKER_HOST
    build_base_image(state); build_worker_images(state)
    with PodmanService(state) as podman, MotoServer(state, docker_host=podman.docker_host) as moto:
        ...  # boto3 clients with endpoint_url=moto.endpoint; Batch jobs run in podman

What moto's Batch needs to run real containers (all tried on this machine):
  - DOCKER_HOST=unix://STATE/podman.sock for the moto server process (docker-py);
  - MOTO_DOCKER_NETWORK_MODE=host, so a container reaches the moto server on 127.0.0.1;
  - MOTO_IAM_LOAD_MANAGED_POLICIES=true, for AWSBatchServiceRole & co.;
  - the job definition's image must exist in podman's storage under EXACTLY that name:
    docker-py's containers.run() pulls a missing image, and there is no registry here. An
    ECR URL (as Terraform's job definitions name) must be tagged locally first:
    tag_images(state, {"localhost/starfish-batch-process-fov:e2e": "<ecr url>:<tag>"});
  - the worker needs AWS_ENDPOINT_URL=http://127.0.0.1:PORT and dummy credentials in its
    environment (job definition or containerOverrides): there is no instance role;
  - an array parent turns SUCCEEDED only when DescribeJobs is called on it after all its
    children succeeded (the status is computed in the describe response), and a job that
    depends on the parent starts only then: keep polling the parent;
  - an array parent NEVER turns FAILED when a child fails: a job depending on it stays PENDING
    until it is cancelled/terminated. Watch the children's statusSummary and time out;
  - moto sets AWS_BATCH_JOB_ID (`<parent>:<i>` for children) but not AWS_BATCH_JOB_ARRAY_INDEX;
  - podman 4.3 logs "unable to get systemd connection to add healthchecks" for images with
    HEALTHCHECK (even NONE) in Docker format: harmless, the containers run.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Mapping
from pathlib import Path

from tests.support import DUMMY_AWS, REPO_ROOT  # noqa: F401 - re-exported

SCRIPTS = REPO_ROOT / "scripts" / "containers"
DEFAULT_STATE = REPO_ROOT / "build" / "e2e-containers"
BASE_IMAGE = "localhost/starfish-batch-base:bookworm"
IMAGE_PREFIX = "localhost/starfish-batch-"
IMAGE_TAG = os.environ.get("E2E_IMAGE_TAG", "e2e")  # `make e2e-setup` tags e2e
TARGETS = ("process-fov", "merge-batch-job")
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def image_name(target: str, tag: str = IMAGE_TAG, prefix: str = IMAGE_PREFIX) -> str:
    return f"{prefix}{target}:{tag}"


def state_dir() -> Path:
    """The podman state dir: $E2E_STATE (set by `make e2e-*`) or build/e2e-containers."""
    return Path(os.environ.get("E2E_STATE") or DEFAULT_STATE).resolve()


def podman_available() -> str | None:
    """None when podman can be used here, else the reason it cannot."""
    if shutil.which("podman") is None:
        return "podman is not installed (scripts/containers/install_podman.sh, or make e2e-setup)"
    if os.geteuid() != 0:
        return "the e2e container stack runs rootful podman (vfs, runc): needs root"
    return None


def podman_env(state: Path) -> dict[str, str]:
    """os.environ plus CONTAINERS_CONF, CONTAINERS_STORAGE_CONF and DOCKER_HOST for ``state``.

    Writes the config files (scripts/containers/podman_env.sh) if they are not there yet.
    """
    out = subprocess.run(
        [str(SCRIPTS / "podman_env.sh"), str(state)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    env = dict(os.environ)
    for line in out.splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            env[key] = value.strip("'")
    return env


def podman(state: Path, *args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """Run ``podman ARGS`` against the storage of ``state``."""
    return subprocess.run(["podman", *args], env=podman_env(state), check=check, text=True, **kwargs)


def image_exists(state: Path, image: str) -> bool:
    return podman(state, "image", "exists", image, check=False).returncode == 0


def build_base_image(state: Path, image: str = BASE_IMAGE, force: bool = False) -> None:
    """debootstrap + podman import (about 50 s; skipped when the image exists)."""
    env = podman_env(state)
    if force:
        env["FORCE"] = "1"
    subprocess.run([str(SCRIPTS / "build_base_image.sh"), image], env=env, check=True)


def build_worker_images(
    state: Path,
    tag: str = IMAGE_TAG,
    prefix: str = IMAGE_PREFIX,
    base_image: str = BASE_IMAGE,
    targets: tuple[str, ...] = TARGETS,
    only_missing: bool = True,
) -> None:
    """Build the worker images with podman from the local base image (a few minutes)."""
    wanted = [t for t in targets if not (only_missing and image_exists(state, image_name(t, tag, prefix)))]
    if not wanted:
        return
    env = podman_env(state) | {
        "CONTAINER_ENGINE": "podman",
        "IMAGE_TAG": tag,
        "IMAGE_PREFIX": prefix,
        "BASE_IMAGE": base_image,
        "BUILD_CA_BUNDLE": HOST_CA_BUNDLE,
    }
    subprocess.run([str(SCRIPTS / "build_images.sh"), *wanted], env=env, check=True)


def tag_images(state: Path, names: Mapping[str, str]) -> None:
    """``podman tag local remote`` for each pair, e.g. local e2e images -> moto ECR URLs.

    moto's Batch asks podman to run the job definition's image by name and would try to pull
    a name podman does not have (and fail: no registry here).
    """
    for local, remote in names.items():
        podman(state, "tag", local, remote)


class PodmanService:
    """``podman system service`` on unix://STATE/podman.sock (scripts/containers/podman_service.sh).

    If a service is already running for ``state`` (e.g. `make e2e-service`), it is used and
    left running; otherwise it is started here and stopped by ``stop()``.
    """

    def __init__(self, state: Path):
        self.state = Path(state).resolve()
        self.socket = self.state / "podman.sock"
        self.pid_file = self.state / "podman.pid"
        self.started_here = False

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    def running(self) -> bool:
        try:
            os.kill(int(self.pid_file.read_text()), 0)
        except (OSError, ValueError):
            return False
        return self.socket.is_socket()

    def start(self) -> PodmanService:
        if not self.running():
            subprocess.run([str(SCRIPTS / "podman_service.sh"), "start", str(self.state)], check=True)
            self.started_here = True
        return self

    def stop(self) -> None:
        if self.started_here:
            subprocess.run([str(SCRIPTS / "podman_service.sh"), "stop", str(self.state)], check=True)
            self.started_here = False

    def __enter__(self) -> PodmanService:  # noqa: PYI034
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# --- a small Batch setup in moto whose jobs run a worker image ----------------------------

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


# --- the local launcher with its workers in the images ------------------------------------

def image_worker_venv(root: Path, state: Path, mounts: list[Path], tag: str = IMAGE_TAG) -> Path:
    """A virtualenv at ``root`` whose ``process-fov`` and ``merge-batch-job`` run the worker
    images (podman, storage of ``state``) with the job's environment; its python runs the
    launcher from this checkout. Returns that python.

    The local executor starts the console scripts found beside its interpreter, with the same
    variables Batch gives (contract.worker_env): so `python scripts/starfish_workflow.py run`
    with this python runs every FOV, and the merge, in the images. ``mounts`` (experiment,
    recipe, results) are bind-mounted at the same paths; the workers run as root here so they
    can write into the launcher's run folder.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    site = Path(subprocess.run([str(root / "bin" / "python"), "-c",
                                "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "host_venv.pth").write_text(f"import site; site.addsitedir({sysconfig.get_path('purelib')!r})\n")
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in podman_env(state).items()
                      if k.startswith("CONTAINERS_"))
    volumes = " ".join(f"-v {shlex.quote(str(m))}:{shlex.quote(str(m))}" for m in mounts)
    for target in TARGETS:
        script = root / "bin" / target
        script.write_text(
            "#!/bin/bash\n" + exports
            # The local executor's phase pipe (contract.PHASE_FD_VAR) goes in as fd 3.
            + 'fds=()\nif [[ -n ${STARFISH_BATCH_PHASE_FD:-} ]]; then\n'
            + '    exec 3>&"$STARFISH_BATCH_PHASE_FD"; fds=(--preserve-fds 1 --env STARFISH_BATCH_PHASE_FD=3)\nfi\n'
            + 'exec podman run --rm --network none --user 0:0 "${fds[@]}"'
            + " --env RUN_MANIFEST_URL --env RUN_MANIFEST_SHA256 --env FOV_INDEX_OFFSET"
            + " --env AWS_BATCH_JOB_ARRAY_INDEX --env AWS_BATCH_JOB_ID"
            + f" {volumes} {shlex.quote(image_name(target, tag))} {target} \"$@\"\n"
        )
        script.chmod(0o755)
    return root / "bin" / "python"


def image_files(state: Path, image: str) -> list[str]:
    """Every path under /opt/venv of ``image`` (directories end with /)."""
    walk = ("import os\nfor d, dirs, files in os.walk('/opt/venv'):\n"
            "    print(d + '/')\n    [print(os.path.join(d, f)) for f in files]")
    out = podman(state, "run", "--rm", "--network", "none", image, "python3", "-c", walk,
                 capture_output=True).stdout
    return out.splitlines()
