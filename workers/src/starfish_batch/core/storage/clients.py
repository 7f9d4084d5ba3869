"""The network clients of every S3 and ``https://`` call, made once per process from one
validated configuration read once from the environment.

The limits exist so that an endpoint that accepts connections and never answers fails in a
minute or two instead of hanging. Each can be set in the environment (tests shorten them to
seconds): seconds to connect, seconds without a byte read, attempts in all (S3 throttling and
5xx errors), and attempts when the endpoint does not answer at all.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from starfish_batch.core.errors import StorageError

CONNECT_TIMEOUT_VAR = "STARFISH_BATCH_CONNECT_TIMEOUT"
READ_TIMEOUT_VAR = "STARFISH_BATCH_READ_TIMEOUT"
MAX_ATTEMPTS_VAR = "STARFISH_BATCH_MAX_ATTEMPTS"
TIMEOUT_ATTEMPTS_VAR = "STARFISH_BATCH_TIMEOUT_ATTEMPTS"
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0
DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_TIMEOUT_ATTEMPTS = 2
# Connections kept open per client: enough for a worker's parallel tile reads.
MAX_POOL_CONNECTIONS = 16
HTTP_RETRY_STATUS = (429, 500, 502, 503, 504)


def _env_number(environ: Mapping[str, str], name: str, default: float, kind=float):
    raw = environ.get(name, "")
    try:
        value = kind(raw) if raw.strip() else default
    except ValueError:
        raise StorageError(f"{name}={raw!r} is not a number") from None
    if value <= 0:
        raise StorageError(f"{name}={raw!r} must be positive")
    return value


@dataclass(frozen=True)
class NetworkConfig:
    """Timeouts and retry budgets of every network call (``timeout_attempts`` at most ``max_attempts``)."""

    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    timeout_attempts: int = DEFAULT_TIMEOUT_ATTEMPTS

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> NetworkConfig:
        """The settings of ``environ``: StorageError naming the variable when one is not a positive number."""
        connect = _env_number(environ, CONNECT_TIMEOUT_VAR, DEFAULT_CONNECT_TIMEOUT)
        read = _env_number(environ, READ_TIMEOUT_VAR, DEFAULT_READ_TIMEOUT)
        attempts = _env_number(environ, MAX_ATTEMPTS_VAR, DEFAULT_MAX_ATTEMPTS, int)
        on_timeout = _env_number(environ, TIMEOUT_ATTEMPTS_VAR, DEFAULT_TIMEOUT_ATTEMPTS, int)
        return cls(connect, read, attempts, min(attempts, on_timeout))

    @property
    def timeouts(self) -> tuple[float, float]:
        return self.connect_timeout, self.read_timeout


@functools.cache
def network_config() -> NetworkConfig:
    """This process's settings, read from the environment at the first network call."""
    return NetworkConfig.from_environ()


def timeouts() -> tuple[float, float]:
    """(connect, read) seconds of every network call."""
    return network_config().timeouts


def max_attempts() -> int:
    return network_config().max_attempts


def timeout_attempts() -> int:
    return network_config().timeout_attempts


def botocore_config():
    """The retry, timeout and connection settings of every AWS client starfish-batch makes."""
    from botocore.config import Config  # lazy: botocore ~0.1-1 s

    config = network_config()
    return Config(retries={"mode": "standard", "max_attempts": config.max_attempts},
                  connect_timeout=config.connect_timeout, read_timeout=config.read_timeout,
                  max_pool_connections=MAX_POOL_CONNECTIONS)


def _is_timeout(exc: BaseException | None) -> bool:
    from botocore.exceptions import ConnectionError as BotoConnectionError  # lazy: botocore ~0.1-1 s
    from botocore.exceptions import ReadTimeoutError  # lazy: botocore ~0.1-1 s

    return isinstance(exc, BotoConnectionError | ReadTimeoutError | TimeoutError)


def watch_retries(client, service: str):
    """Say on stderr what is retried and why (botocore retries in silence), and give up on an
    endpoint that does not answer after ``timeout_attempts()`` tries, not ``max_attempts()``:
    throttling deserves many retries, a silent endpoint two."""
    limit, budget = max_attempts(), timeout_attempts()

    def on_needs_retry(attempts, caught_exception=None, response=None, operation=None, **_):
        timed_out = _is_timeout(caught_exception)
        if timed_out and attempts >= budget:
            raise caught_exception  # botocore has no other way to stop its retries early
        if caught_exception is not None:
            reason = str(caught_exception) or type(caught_exception).__name__
        else:
            parsed = response[1] if isinstance(response, tuple) and len(response) > 1 else {}
            status = parsed.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if status < 500 and status != 429:
                return None
            reason = f"HTTP {status}"
        if attempts < limit:
            print(f"starfish-batch: {service} {getattr(operation, 'name', 'request')}: {reason}; "
                  f"retrying (attempt {attempts + 1} of {budget if timed_out else limit})",
                  file=sys.stderr, flush=True)
        return None

    event = f"needs-retry.{client.meta.service_model.service_id.hyphenize()}"  # "cloudwatch-logs"
    client.meta.events.register_first(event, on_needs_retry)
    return client


_region: str | None = None


def use_region(region: str | None) -> None:
    """The region of the S3 client when the environment names none (the launcher sets the
    Terraform outputs' region, so a machine without an AWS config still works)."""
    global _region
    if region != _region:
        _region = region
        s3_client.cache_clear()


@functools.cache
def s3_client():
    """One client per process; boto3 itself honours ``AWS_ENDPOINT_URL`` and friends."""
    import boto3  # lazy: boto3 ~1 s

    session = boto3.session.Session()
    region = None if session.region_name else _region
    return watch_retries(session.client("s3", region_name=region, config=botocore_config()), "s3")


@functools.cache
def http_session():
    """One keep-alive session per process for ``https://`` experiments, with retries on 5xx."""
    import requests  # lazy: requests ~0.2 s
    from requests.adapters import HTTPAdapter  # lazy: requests ~0.2 s
    from urllib3.util.retry import Retry  # lazy: urllib3 ~0.1 s

    retry = Retry(total=max_attempts() - 1, connect=timeout_attempts() - 1, read=timeout_attempts() - 1,
                  backoff_factor=0.2, status_forcelist=HTTP_RETRY_STATUS, allowed_methods=("GET", "HEAD"))
    adapter = HTTPAdapter(max_retries=retry, pool_maxsize=MAX_POOL_CONNECTIONS)
    session = requests.Session()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
