"""The adversarial layer: what careless or hostile recipes, names and users do to a run.
Fixtures: a moto server as a separate process (for tests whose launchers are processes of their
own) with a bucket; recipes and names as a hostile user would write them. Whatever a test's run
left running (on old code, or after a failure) is killed after the test."""

from __future__ import annotations

import pytest

from starfish_batch.core import storage
from starfish_batch.demo.experiment import write_demo_experiment
from tests.support import DUMMY_AWS, hostile
from tests.support.moto import MotoServer


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory):
    """``moto_server`` on 127.0.0.1 (the tests' one helper), stopped by PID after the module."""
    if MotoServer.command() is None:
        pytest.skip("moto_server is not installed (PyPI moto[server])")
    server = MotoServer(tmp_path_factory.mktemp("moto")).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def serial_moto_endpoint(tmp_path_factory):
    """A moto server answering one request at a time, so that its conditional writes are atomic
    as AWS's are (tests/support/moto.py: SERIAL_SERVER); for the races over one object."""
    if MotoServer.command() is None:
        pytest.skip("moto_server is not installed (PyPI moto[server])")
    server = MotoServer(tmp_path_factory.mktemp("moto"), serial=True).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def s3_server(serial_moto_endpoint, monkeypatch):
    """The environment of a client of that server (for this process and the ones it forks),
    and a fresh bucket ``races``."""
    import boto3  # lazy: boto3 ~1 s

    env = DUMMY_AWS | {"AWS_ENDPOINT_URL": serial_moto_endpoint}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    storage.s3_client.cache_clear()
    client = boto3.client("s3", endpoint_url=serial_moto_endpoint, region_name="us-east-1")
    for bucket in client.list_buckets().get("Buckets", []):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"]):
            for obj in page.get("Contents", []):
                client.delete_object(Bucket=bucket["Name"], Key=obj["Key"])
        client.delete_bucket(Bucket=bucket["Name"])
    client.create_bucket(Bucket="races")
    yield env, client
    storage.s3_client.cache_clear()


@pytest.fixture(autouse=True)
def _kill_leftovers():
    yield
    while hostile._TOKENS:
        hostile.kill_all(hostile._TOKENS.pop())


ODD_TARGETS = ["ACTB\x1b[31m", "GAPDH\nforged"]
"""Codebook targets that would recolour the terminal and forge a line."""


@pytest.fixture(scope="session")
def two_fovs(tmp_path_factory):
    """A small two-FOV demo experiment (A1, A2) whose targets hold control characters, written once."""
    return write_demo_experiment(tmp_path_factory.mktemp("exp"), n_fovs=2, shape=(64, 64), n_spots=4, seed=1,
                                 targets=ODD_TARGETS)
