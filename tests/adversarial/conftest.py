"""Fixtures of the adversarial layer: a moto server as a separate process (for tests whose
launchers are processes of their own), with a bucket."""

from __future__ import annotations

import pytest

from tests.support import DUMMY_AWS


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory):
    """``moto_server`` on 127.0.0.1 (the tests' one helper), stopped by PID after the module."""
    from tests.support.moto import MotoServer

    if MotoServer.command() is None:
        pytest.skip("moto_server is not installed (PyPI moto[server])")
    server = MotoServer(tmp_path_factory.mktemp("moto")).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def s3_server(moto_endpoint, monkeypatch):
    """The environment of a client of that server (for this process and the ones it forks),
    and a fresh bucket ``races``."""
    import boto3

    from starfish_batch import storage

    env = DUMMY_AWS | {"AWS_ENDPOINT_URL": moto_endpoint}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    storage.s3_client.cache_clear()
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    for bucket in client.list_buckets().get("Buckets", []):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"]):
            for obj in page.get("Contents", []):
                client.delete_object(Bucket=bucket["Name"], Key=obj["Key"])
        client.delete_bucket(Bucket=bucket["Name"])
    client.create_bucket(Bucket="races")
    yield env, client
    storage.s3_client.cache_clear()
