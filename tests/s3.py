"""A real S3 endpoint for tests: ``moto_server`` in its own process on 127.0.0.1.

Usage (a session fixture, or a ``with`` block)::

    server = MotoServer().start()          # or: with MotoServer() as server: ...
    server.create_bucket("artifacts")
    env = s3_env(server, "artifacts")      # FERROUS_* variables for `ferrous serve`
    server.client().list_objects_v2(Bucket="artifacts")   # boto3, to look behind the store
    server.stop()

moto accepts any credentials; ``CREDENTIALS`` are what these helpers use. It keeps objects in
its memory: tests should use a bucket (or prefix) of their own and need not clean up, but a
test that stores hundreds of MB should delete them.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from tests.git_servers import free_port

if TYPE_CHECKING:
    from ferrous.infrastructure.storage.s3 import S3ObjectStore

REGION = "us-east-1"
ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"  # moto checks no credentials
MOTO_SERVER = Path(sys.executable).parent / "moto_server"


class MotoServer:
    """``moto_server -H 127.0.0.1 -p <free port>``; ``url`` is its endpoint once started."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> MotoServer:
        """Start it and wait until it answers HTTP; RuntimeError if it does not in time."""
        if not MOTO_SERVER.exists():
            raise RuntimeError(f"{MOTO_SERVER} is missing: install the dev group (moto[server])")
        self.process = subprocess.Popen(
            [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self.process.returncode}")
            try:
                httpx.get(f"{self.url}/moto-api/", timeout=1.0)
                return self
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"moto_server did not answer on {self.url} within {timeout} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def create_bucket(self, name: str | None = None) -> str:
        """Make a bucket (a fresh ``test-<random>`` one without a name); its name."""
        name = name or f"test-{uuid.uuid4().hex[:12]}"
        response = httpx.put(f"{self.url}/{name}", timeout=10.0)
        response.raise_for_status()
        return name

    def client(self) -> Any:
        """A boto3 S3 client on this server (path-style), to look at or tamper with objects
        behind the store's back."""
        import boto3  # noqa: PLC0415 (only the tests that look behind the store pay for it)
        from botocore.config import Config  # noqa: PLC0415

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            config=Config(s3={"addressing_style": "path"}),
        )

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def s3_env(server: MotoServer, bucket: str, prefix: str = "") -> dict[str, str]:
    """The ``FERROUS_*`` variables that point a ``ferrous serve`` process at ``bucket`` (keys
    under ``prefix`` when given) on ``server``."""
    url = f"s3://{bucket}/{prefix.strip('/')}" if prefix.strip("/") else f"s3://{bucket}"
    return {
        "FERROUS_STORAGE_URL": url,
        "FERROUS_S3_ENDPOINT_URL": server.url,
        "FERROUS_S3_REGION": REGION,
        "FERROUS_S3_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "FERROUS_S3_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
    }


def s3_store(server: MotoServer, bucket: str, prefix: str = "") -> S3ObjectStore:
    """An ``S3ObjectStore`` on ``bucket`` of ``server`` (for tests in this process)."""
    from ferrous.infrastructure.storage.s3 import S3ObjectStore  # noqa: PLC0415 (see factory)

    return S3ObjectStore(
        bucket=bucket,
        prefix=prefix,
        endpoint_url=server.url,
        region=REGION,
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET_ACCESS_KEY,
    )
