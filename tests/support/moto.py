"""One moto server helper for every test that needs AWS as a separate process (Terraform,
the launcher's end-to-end test, the containers): ``moto_server`` on 127.0.0.1, stopped by PID.

Without ``docker_host`` its Batch runs no containers (every job SUCCEEDS at submission); with
one, Batch runs the job definitions' images through that Docker API (podman here). With
``tls`` (a certificate and key from :func:`self_signed_cert`) it serves https only, and clients
trust that certificate alone. (moto 5.2.5 still refuses https requests under a TLS-only bucket
policy: it ignores ``Bool`` conditions such as ``aws:SecureTransport``.)
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.support import DUMMY_AWS, free_port
from tests.support.terraform import point_at_moto

# moto_server's own app, served one request at a time. moto checks a conditional write (If-Match,
# If-None-Match) and then stores the object in two steps, so under its threaded server two
# concurrent conditional PUTs can both pass the check; AWS makes them atomic (one wins, the other
# gets 412 or 409). Served serially, moto's answers have AWS's atomicity: the claim races use it.
SERIAL_SERVER = (
    "import sys\n"
    "from werkzeug.serving import run_simple\n"
    "from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app\n"
    "run_simple(sys.argv[1], int(sys.argv[2]), DomainDispatcherApplication(create_backend_app), threaded=False,\n"
    "           request_handler=MotoRequestHandler)\n"
)


class MotoServer:
    """``moto_server -H 127.0.0.1 -p PORT``, its log in ``log_dir`` (and its PID in ``pid_file``)."""

    def __init__(self, log_dir: Path, *, docker_host: str | None = None, port: int | None = None,
                 extra_env: Mapping[str, str] | None = None, pid_file: Path | None = None,
                 tls: tuple[Path, Path] | None = None, serial: bool = False):
        self.log_dir = Path(log_dir).resolve()
        self.serial = serial
        self.tls = tls
        self.docker_host = docker_host
        self.port = port or free_port()
        self.extra_env = dict(extra_env or {})
        self.pid_file = pid_file
        self.log_path = self.log_dir / f"moto-{self.port}.log"
        self.proc: subprocess.Popen | None = None
        self.stop_info = ""

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def ca_bundle(self) -> str | None:
        """The certificate clients must trust (AWS_CA_BUNDLE, SSL_CERT_FILE), or None over http."""
        return str(self.tls[0]) if self.tls else None

    def _urlopen(self, request, timeout: float):
        context = ssl.create_default_context(cafile=self.ca_bundle) if self.tls else None
        return urllib.request.urlopen(request, timeout=timeout, context=context)  # noqa: S310 (loopback)

    endpoint = url

    @staticmethod
    def command() -> list[str] | None:
        """The moto_server beside this interpreter, on PATH, or None when it is not installed."""
        exe = Path(sys.executable).with_name("moto_server")
        if exe.exists():
            return [str(exe)]
        found = shutil.which("moto_server")
        return [found] if found else None

    def start(self, timeout: float = 60.0) -> MotoServer:
        command = self.command()
        if command is None:
            raise RuntimeError("moto_server is not installed (PyPI moto[server])")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env |= DUMMY_AWS | {"MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
        if self.docker_host:
            # Containers share the host network, so 127.0.0.1:PORT is this server.
            env |= {"DOCKER_HOST": self.docker_host, "MOTO_DOCKER_NETWORK_MODE": "host",
                    "MOTO_HOST": "http://127.0.0.1", "MOTO_PORT": str(self.port)}
        env |= self.extra_env
        tls_args = ["-c", str(self.tls[0]), "-k", str(self.tls[1])] if self.tls else []
        argv = [*command, "-H", "127.0.0.1", "-p", str(self.port), *tls_args]
        if self.serial:
            if self.tls:
                raise ValueError("a serial moto server serves http only")
            argv = [sys.executable, "-c", SERIAL_SERVER, "127.0.0.1", str(self.port)]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, env=env,
                                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        if self.pid_file is not None:
            self.pid_file.write_text(str(self.proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited {self.proc.returncode}; see {self.log_path}")
            try:
                with self._urlopen(f"{self.url}/moto-api/", timeout=2):
                    break
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        else:
            self.stop()
            raise RuntimeError(f"moto_server did not answer on {self.url} within {timeout} s")
        if not self.docker_host:
            self.config({"batch": {"use_docker": False}})  # no container ever starts
        return self

    def post(self, path: str, body: dict | None = None) -> None:
        request = urllib.request.Request(f"{self.url}{path}", data=json.dumps(body or {}).encode(),
                                         method="POST", headers={"Content-Type": "application/json"})
        self._urlopen(request, timeout=30).close()

    def config(self, cfg: dict) -> None:
        """POST /moto-api/config, e.g. {"batch": {"use_docker": False}}."""
        self.post("/moto-api/config", cfg)

    def reset(self) -> None:
        self.post("/moto-api/reset")

    def stop(self) -> None:
        if self.proc is not None:
            started = time.monotonic()
            how = stop_pid(self.proc.pid, proc=self.proc)
            self.proc.wait(timeout=30)
            self.stop_info = f"moto_server stopped ({how}) in {time.monotonic() - started:.1f} s"
            self.proc = None
        if self.pid_file is not None and self.pid_file.exists():
            self.pid_file.unlink()

    def client(self, service: str, region: str | None = None):
        import boto3  # lazy: boto3 ~1 s

        # A session per client: boto3's default session is not thread-safe.
        return boto3.session.Session().client(
            service, endpoint_url=self.url, region_name=region or DUMMY_AWS["AWS_DEFAULT_REGION"],
            aws_access_key_id="test", aws_secret_access_key="test", verify=self.ca_bundle or True)

    def point_terraform_here(self, module_dir: Path) -> None:
        """Point the root module in ``module_dir`` (a copy) at this server; see tests/support/terraform.py."""
        point_at_moto(module_dir, self.url)

    def __enter__(self) -> MotoServer:  # noqa: PYI034
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def stop_pid(pid: int, timeout: float = 10.0, proc: subprocess.Popen | None = None) -> str:
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


def self_signed_cert(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A certificate (its own CA) and key for ``host`` (an IP SAN: Go's TLS ignores the CN), made
    here for one test: nothing but that test's clients trusts it."""
    from cryptography import x509  # lazy: cryptography ~0.4 s
    from cryptography.hazmat.primitives import hashes, serialization  # lazy: cryptography ~0.4 s
    from cryptography.hazmat.primitives.asymmetric import ec  # lazy: cryptography ~0.4 s
    from cryptography.x509.oid import NameOID  # lazy: cryptography ~0.4 s

    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "moto-cert.pem", directory / "moto-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


# The one moto server fixture (offered to every test by tests/conftest.py).
@pytest.fixture(scope="session")
def moto_available() -> None:
    try:
        # lazy: a probe for whether boto3 is installed
        import boto3  # noqa: F401
    except ImportError:
        pytest.skip("boto3 is not installed: moto-backed Terraform tests skipped")
    if MotoServer.command() is None:
        pytest.skip("moto_server (PyPI moto[server]) is not installed: moto-backed Terraform tests skipped")


@pytest.fixture(scope="session")
def moto_server(moto_available, tmp_path_factory):
    """A moto server for the session; call .reset() between tests that share it."""
    server = MotoServer(tmp_path_factory.mktemp("moto")).start()
    try:
        yield server
    finally:
        server.stop()
