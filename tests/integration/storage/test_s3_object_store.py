"""What only the S3 store does: where keys land in the bucket, the sha256 metadata, which
unfinished uploads are its own to discard, and failures of the service itself (as
StorageError)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from ferrous.domain.errors import StorageError
from tests.git_servers import free_port
from tests.integration.storage.test_object_store_contract import LARGE, chunks_of, sha
from tests.s3 import MotoServer, s3_store

pytestmark = pytest.mark.integration


async def test_objects_live_under_the_prefix_with_their_sha256(moto: MotoServer) -> None:
    bucket = moto.create_bucket()
    store = s3_store(moto, bucket, "/some/prefix/")
    client = moto.client()
    try:
        small = await store.put("a/small", chunks_of(b"hello"))
        data = os.urandom(LARGE)
        await store.put("a/announced", chunks_of(data), sha256=sha(data))
        await store.put("a/unannounced", chunks_of(data))
        head = client.head_object(Bucket=bucket, Key="some/prefix/a/small")
        assert head["Metadata"] == {"sha256": small.sha256}
        head = client.head_object(Bucket=bucket, Key="some/prefix/a/announced")
        assert head["Metadata"] == {"sha256": sha(data)}
        unannounced = await store.stat("a/unannounced")
        assert unannounced is not None
        assert (unannounced.size, unannounced.sha256) == (LARGE, "")  # see s3.py
        listed = client.list_objects_v2(Bucket=bucket)["Contents"]
        assert sorted(item["Key"] for item in listed) == [
            "some/prefix/a/announced",
            "some/prefix/a/small",
            "some/prefix/a/unannounced",
        ]
        assert [key async for key in store.keys("a/s")] == ["a/small"]
    finally:
        await store.aclose()


async def test_the_client_comes_back_after_aclose(moto: MotoServer) -> None:
    store = s3_store(moto, moto.create_bucket())
    await store.put("k", chunks_of(b"one"))
    await store.aclose()
    assert await store.stat("k") is not None
    await store.aclose()


async def test_a_missing_bucket_is_a_storage_error(moto: MotoServer) -> None:
    store = s3_store(moto, "no-such-bucket-here")
    try:
        with pytest.raises(StorageError, match="no-such-bucket-here"):
            await store.put("k", chunks_of(b"x"))
        with pytest.raises(StorageError):
            await store.read("k")
        with pytest.raises(StorageError):
            [key async for key in store.keys("")]
    finally:
        await store.aclose()


async def test_an_unreachable_service_is_a_storage_error() -> None:
    server = MotoServer(port=free_port())  # never started: nothing listens there
    store = s3_store(server, "bucket")
    try:
        with pytest.raises(StorageError, match="connect"):
            await store.stat("k")
    finally:
        await store.aclose()


async def test_only_uploads_under_the_prefix_are_discarded(moto: MotoServer) -> None:
    bucket = moto.create_bucket()
    store = s3_store(moto, bucket, "some/prefix")
    client = moto.client()
    for name in ("some/prefix/a/cut-short", "some/prefixed/other", "elsewhere/other"):
        client.create_multipart_upload(Bucket=bucket, Key=name)
    try:
        assert await store.discard_abandoned("", datetime.now(UTC) + timedelta(minutes=1)) == 1
        uploads = client.list_multipart_uploads(Bucket=bucket)["Uploads"]
        assert sorted(upload["Key"] for upload in uploads) == [
            "elsewhere/other",
            "some/prefixed/other",
        ]
    finally:
        await store.aclose()
