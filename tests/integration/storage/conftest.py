"""Object store fixtures: a fresh store per test, on each real backend.

Tests that take ``backend`` run once per kind in ``KINDS``: ``local`` (a folder in
``tmp_path``) and ``s3`` (a bucket of its own on one ``moto_server`` per session, under a
key prefix so that the prefix handling is exercised too). ``Backend`` also reaches behind
the store: ``tamper`` replaces an object's bytes without the store knowing, ``leftovers``
lists what an unfinished put may leave (temporary files, multipart uploads in progress),
``abandon`` leaves such a trace for a key, as a put cut short by a killed server would.

The memory store runs the same contract in tests/unit/infrastructure.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ferrous.application.storage_ports import ObjectStore
from ferrous.infrastructure.storage.hashing import TEMP_PREFIX
from ferrous.infrastructure.storage.local import LocalObjectStore
from tests.s3 import MotoServer, s3_store

KINDS = ("local", "s3")
S3_PREFIX = "ferrous/objects"


@dataclass(frozen=True, slots=True)
class Backend:
    kind: str
    store: ObjectStore
    tamper: Callable[[str, bytes], None]  # overwrite key's bytes behind the store's back
    leftovers: Callable[[], list[str]]  # traces of unfinished puts
    abandon: Callable[[str], None]  # begin a put of key and never finish it


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


def local_backend(root: Path) -> Backend:
    store = LocalObjectStore(root)

    def tamper(key: str, data: bytes) -> None:
        (root / key).write_bytes(data)  # same inode: any recorded sha256 stays as it was

    def leftovers() -> list[str]:
        if not root.exists():
            return []
        return sorted(str(p.relative_to(root)) for p in root.rglob(f"{TEMP_PREFIX}*"))

    def abandon(key: str) -> None:
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / f"{TEMP_PREFIX}{uuid.uuid4().hex}").write_bytes(
            b"the start of " + key.encode()
        )

    return Backend("local", store, tamper, leftovers, abandon)


def s3_backend(server: MotoServer) -> Backend:
    bucket = server.create_bucket()
    store = s3_store(server, bucket, S3_PREFIX)
    client = server.client()

    def tamper(key: str, data: bytes) -> None:
        client.put_object(Bucket=bucket, Key=f"{S3_PREFIX}/{key}", Body=data)

    def leftovers() -> list[str]:
        uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        return sorted(f"upload of {upload['Key']}" for upload in uploads)

    def abandon(key: str) -> None:
        name = f"{S3_PREFIX}/{key}"
        upload = client.create_multipart_upload(Bucket=bucket, Key=name)
        client.upload_part(
            Bucket=bucket, Key=name, UploadId=upload["UploadId"], PartNumber=1, Body=b"part 1"
        )

    return Backend("s3", store, tamper, leftovers, abandon)


@pytest.fixture(params=KINDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "s3":
        made = s3_backend(request.getfixturevalue("moto"))
    else:
        made = local_backend(tmp_path / "objects")
    try:
        yield made
    finally:
        await made.store.aclose()
