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
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = REPO_ROOT / "scripts" / "containers"
DEFAULT_STATE = REPO_ROOT / "build" / "e2e-containers"
BASE_IMAGE = "localhost/starfish-batch-base:bookworm"
IMAGE_PREFIX = "localhost/starfish-batch-"
IMAGE_TAG = "e2e"
TARGETS = ("process-fov", "merge-batch-job")
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
DUMMY_AWS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop_pid(pid: int, timeout: float = 10.0, proc: subprocess.Popen | None = None) -> str:
    """SIGTERM, then SIGKILL after ``timeout`` s; returns how it ended ("term", "kill", "gone")."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return "gone"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None:
            if proc.poll() is not None:
                return "term"
        else:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return "term"
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return "term"
    return "kill"


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


class MotoServer:
    """``moto_server -H 127.0.0.1 -p PORT`` whose Batch runs real containers via podman.

    Its PID is written to STATE/moto.pid (so scripts/containers/teardown.sh can stop a
    leftover one) and its log to STATE/moto-PORT.log.
    """

    def __init__(
        self,
        state: Path,
        docker_host: str | None,
        port: int | None = None,
        extra_env: Mapping[str, str] | None = None,
    ):
        self.state = Path(state).resolve()
        self.docker_host = docker_host
        self.port = port or free_port()
        self.extra_env = dict(extra_env or {})
        self.proc: subprocess.Popen | None = None
        self.log_path = self.state / f"moto-{self.port}.log"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _moto_server_cmd(self) -> list[str]:
        exe = Path(sys.executable).with_name("moto_server")
        if exe.exists():
            return [str(exe)]
        venv_exe = REPO_ROOT / ".venv" / "bin" / "moto_server"
        if venv_exe.exists():
            return [str(venv_exe)]
        return [sys.executable, "-m", "moto.server"]

    def start(self, timeout: float = 60.0) -> MotoServer:
        self.state.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env |= DUMMY_AWS | {
            "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
            # Containers share the host network, so 127.0.0.1:PORT is this server.
            "MOTO_DOCKER_NETWORK_MODE": "host",
            "MOTO_HOST": "http://127.0.0.1",
            "MOTO_PORT": str(self.port),
        }
        if self.docker_host:
            env["DOCKER_HOST"] = self.docker_host
        env |= self.extra_env
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [*self._moto_server_cmd(), "-H", "127.0.0.1", "-p", str(self.port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._log = log
        (self.state / "moto.pid").write_text(str(self.proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited {self.proc.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=2):
                    return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"moto_server did not answer on {self.endpoint} within {timeout} s")

    def reset(self) -> None:
        req = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(req, timeout=30).close()

    def config(self, cfg: dict) -> None:
        """POST /moto-api/config, e.g. {"batch": {"use_docker": False}}."""
        req = urllib.request.Request(
            f"{self.endpoint}/moto-api/config",
            data=json.dumps(cfg).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(req, timeout=30).close()

    def stop(self) -> None:
        if self.proc is not None:
            t0 = time.monotonic()
            how = _stop_pid(self.proc.pid, proc=self.proc)
            self.proc.wait(timeout=30)
            self.stop_info = f"moto_server stopped ({how}) in {time.monotonic() - t0:.1f} s"
            self.proc = None
            self._log.close()
        pid_file = self.state / "moto.pid"
        if pid_file.exists():
            pid_file.unlink()

    def client(self, service: str):
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=DUMMY_AWS["AWS_DEFAULT_REGION"],
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    def __enter__(self) -> MotoServer:  # noqa: PYI034
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# --- pytest fixtures (import them in a conftest.py: `from containers import *` or by name) ---


@pytest.fixture(scope="session")
def e2e_state() -> Path:
    """The podman state dir, with both worker images built (builds what is missing).

    Opt-in: only with E2E=1 in the environment (`make e2e` sets it), since building the
    images takes minutes and GBs; E2E_BUILD=0 uses what `make e2e-setup` built, or skips.
    """
    if os.environ.get("E2E") != "1":
        pytest.skip("container e2e tests are opt-in: E2E=1 (make e2e)")
    reason = podman_available()
    if reason:
        pytest.skip(reason)
    state = state_dir()
    if os.environ.get("E2E_BUILD", "1") == "0":
        missing = [t for t in TARGETS if not image_exists(state, image_name(t))]
        if missing:
            pytest.skip(f"images {missing} not built in {state}: run `make e2e-setup`")
    else:
        build_base_image(state)
        build_worker_images(state)
    return state


@pytest.fixture(scope="session")
def podman_service(e2e_state: Path) -> Iterator[PodmanService]:
    with PodmanService(e2e_state) as service:
        yield service


@pytest.fixture(scope="session")
def moto_batch_server(e2e_state: Path, podman_service: PodmanService) -> Iterator[MotoServer]:
    """A moto server whose Batch runs containers in podman (state is reset per test by users)."""
    with MotoServer(e2e_state, docker_host=podman_service.docker_host) as server:
        yield server
