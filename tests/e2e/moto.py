"""A real S3-compatible server (moto's, a test dependency) for the backup and replica tests.

It listens on the host end of a sandbox host's link, so the host reaches it as it would reach a
provider's S3 endpoint; each test module gives its own port, bucket and keys.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def s3_client(endpoint: str, key_id: str, secret: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key_id, aws_secret_access_key=secret,
                        region_name="us-east-1")


@contextmanager
def moto_server(address: str, port: int, *, bucket: str, key_id: str, secret: str) -> Iterator[str]:
    """Start moto_server on address:port with `bucket` made; yield its endpoint URL; stop it after."""
    server = Path(sys.executable).parent / "moto_server"
    if not server.exists():
        pytest.fail("moto_server is missing: pip install 'moto[server]' (a test dependency)")
    process = subprocess.Popen([str(server), "-H", address, "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://{address}:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection((address, port), timeout=0.5).close()
                break
            except OSError:
                assert process.poll() is None, "moto_server exited"
                time.sleep(0.1)
        s3_client(endpoint, key_id, secret).create_bucket(Bucket=bucket)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)
