"""Objects in an S3 bucket (AWS, or compatible: MinIO, Ceph, moto), through aiobotocore.

A put under 8 MiB is one PutObject, sent once the whole body is known to match its sha256;
larger ones are a multipart upload of 8 MiB parts, completed only once the sha256 matches
and aborted on any failure (a mismatch, the limit, an error of the chunk source,
cancellation), so an object appears whole or not at all. Memory: one part at a time.

The sha256 of the bytes is kept as user metadata (``x-amz-meta-sha256``). A multipart
upload must name its metadata before the first part, so it carries the sha256 only when the
caller announced it; ``stat`` answers ``""`` for the others. (Writing it afterwards takes a
CopyObject of the whole object, limited to 5 GB, and could race another put of the key.)

Uploads left by a crashed server are invisible but billed until aborted:
``discard_abandoned`` aborts those under the prefix that began before its cutoff (the
cleanup's orphan sweep calls it, once a day by default); a lifecycle rule on the bucket that aborts
incomplete multipart uploads does the same without the server.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from datetime import UTC, datetime
from typing import Any

import aiohttp
import structlog
from aiobotocore.config import AioConfig  # type: ignore[import-untyped]  # no stubs shipped
from aiobotocore.session import get_session  # type: ignore[import-untyped]  # no stubs shipped
from botocore.exceptions import (  # type: ignore[import-untyped]  # no stubs installed
    BotoCoreError,
    ClientError,
)

from ferrous.application.storage_ports import StoredObject
from ferrous.domain.errors import CorruptObject, NotFound, StorageError
from ferrous.infrastructure.storage.hashing import (
    CHUNK_SIZE,
    Tally,
    check_key,
    check_prefix,
    check_range,
    normal_sha256,
)

log = structlog.get_logger(__name__)

PART_SIZE = 8 * 1024 * 1024
SHA256_METADATA = "sha256"
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
#: what a request can fail with besides ClientError (an answer with an error code)
_TRANSPORT_ERRORS = (BotoCoreError, aiohttp.ClientError)
#: concurrent requests, streamed downloads included (each holds a connection while it lasts)
MAX_CONNECTIONS = 64


class S3ObjectStore:
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.endpoint_url = endpoint_url
        self.region = region
        self._access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        self._client: Any = None  # made on first use, inside the running event loop
        self._stack = AsyncExitStack()
        self._lock = asyncio.Lock()

    async def put(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        sha256: str | None = None,
        max_bytes: int | None = None,
    ) -> StoredObject:
        name = self.prefix + check_key(key)
        tally = Tally(sha256=sha256, max_bytes=max_bytes)
        client = await self._connect()
        buffer = bytearray()
        upload: _MultipartUpload | None = None
        try:
            async for chunk in chunks:
                tally.add(chunk)
                buffer += chunk
                if len(buffer) >= PART_SIZE:
                    if upload is None:
                        upload = _MultipartUpload(client, self.bucket, name, tally.expected)
                        with self._errors("start an upload of", key):
                            await upload.start()
                    with self._errors("upload a part of", key):
                        await upload.send(bytes(buffer))
                    buffer.clear()
            if upload is None:
                digest = tally.verify()
                with self._errors("put", key):
                    await client.put_object(
                        Bucket=self.bucket,
                        Key=name,
                        Body=bytes(buffer),
                        Metadata={SHA256_METADATA: digest},
                    )
            else:
                if buffer:
                    with self._errors("upload a part of", key):
                        await upload.send(bytes(buffer))
                    buffer.clear()
                digest = tally.verify()
                with self._errors("complete the upload of", key):
                    await upload.complete()
        except BaseException:
            if upload is not None:
                await asyncio.shield(upload.abort())
            raise
        return StoredObject(key=key, size=tally.size, sha256=digest)

    async def read(
        self,
        key: str,
        *,
        start: int = 0,
        end: int | None = None,
        sha256: str | None = None,
    ) -> AsyncIterator[bytes]:
        name = self.prefix + check_key(key)
        check_range(start, end, sha256)
        expected = normal_sha256(sha256)
        if end == start:  # no Range header means nothing; the object must still exist
            if await self.stat(key) is None:
                raise NotFound(f"no object {key!r}")
            return _nothing()
        options: dict[str, str] = {}
        if start or end is not None:
            options["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        client = await self._connect()
        try:
            response = await client.get_object(Bucket=self.bucket, Key=name, **options)
        except ClientError as exc:
            code = _code(exc)
            if code in _MISSING:
                raise NotFound(f"no object {key!r}") from exc
            if code == "InvalidRange":
                return _nothing()  # the object exists; the range starts at or past its end
            raise self._failure("get", key, exc) from exc
        except _TRANSPORT_ERRORS as exc:
            raise self._failure("get", key, exc) from exc
        return self._stream(response["Body"], key, expected)

    async def stat(self, key: str) -> StoredObject | None:
        name = self.prefix + check_key(key)
        client = await self._connect()
        try:
            head = await client.head_object(Bucket=self.bucket, Key=name)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return None
            raise self._failure("stat", key, exc) from exc
        except _TRANSPORT_ERRORS as exc:
            raise self._failure("stat", key, exc) from exc
        metadata = head.get("Metadata") or {}
        return StoredObject(
            key=key,
            size=int(head["ContentLength"]),
            sha256=str(metadata.get(SHA256_METADATA, "")),
        )

    async def delete(self, key: str) -> None:
        name = self.prefix + check_key(key)
        client = await self._connect()
        try:
            await client.delete_object(Bucket=self.bucket, Key=name)
        except ClientError as exc:
            if _code(exc) not in _MISSING:
                raise self._failure("delete", key, exc) from exc
        except _TRANSPORT_ERRORS as exc:
            raise self._failure("delete", key, exc) from exc

    async def keys(self, prefix: str) -> AsyncIterator[str]:
        """Every key under ``prefix``, in S3's order (by UTF-8 bytes): the listing gives
        sizes and dates anyway."""
        async for entry in self.entries(prefix):
            yield entry.key

    async def entries(self, prefix: str) -> AsyncIterator[StoredObject]:
        """Every object under ``prefix``, in S3's order, from ListObjectsV2 (1,000 a page):
        ``LastModified`` is when the upload finished, or, for a multipart upload, when it
        began."""
        check_prefix(prefix)
        client = await self._connect()
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix
        )
        with self._errors("list", prefix):
            async for page in pages:
                for item in page.get("Contents", ()):
                    modified = item.get("LastModified")
                    yield StoredObject(
                        key=str(item["Key"])[len(self.prefix) :],
                        size=int(item.get("Size", 0)),
                        sha256="",
                        modified=_utc(modified) if isinstance(modified, datetime) else None,
                    )

    async def discard_abandoned(
        self,
        prefix: str,
        started_before: datetime,
        *,
        only: Callable[[str], bool] | None = None,
    ) -> int:
        """Abort the multipart uploads under ``prefix`` ``Initiated`` before then (and whose
        key, without the store's prefix, ``only`` accepts), listed by ListMultipartUploads
        (1,000 a page); one that will not abort is logged and left for the next call."""
        check_prefix(prefix)
        client = await self._connect()
        pages = client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix
        )
        discarded = 0
        with self._errors("list the multipart uploads under", self.prefix + prefix):
            async for page in pages:
                for upload in page.get("Uploads", ()):
                    started = upload.get("Initiated")
                    if not isinstance(started, datetime) or _utc(started) >= started_before:
                        continue
                    if only is not None and not only(str(upload["Key"])[len(self.prefix) :]):
                        continue
                    if await self._abort(client, upload["Key"], upload["UploadId"], started):
                        discarded += 1
        return discarded

    async def _abort(self, client: Any, name: str, upload_id: str, started: datetime) -> bool:
        try:
            await client.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id)
        except (ClientError, *_TRANSPORT_ERRORS) as exc:
            gone = isinstance(exc, ClientError) and _code(exc) == "NoSuchUpload"
            if not gone:  # gone: completed or aborted meanwhile
                log.warning(
                    "s3_upload_not_discarded", key=name, upload_id=upload_id, error=str(exc)
                )
            return False
        log.info(
            "s3_upload_discarded",
            key=name,
            upload_id=upload_id,
            initiated=_utc(started).isoformat(),
        )
        return True

    async def aclose(self) -> None:
        async with self._lock:
            self._client = None
            await self._stack.aclose()

    async def _connect(self) -> Any:
        async with self._lock:
            if self._client is None:
                config = AioConfig(
                    # MinIO, moto and most self-hosted services want path-style addresses
                    s3={"addressing_style": "path"} if self.endpoint_url else {},
                    retries={"max_attempts": 3, "mode": "standard"},
                    max_pool_connections=MAX_CONNECTIONS,
                    # sha256 is checked end to end by us; botocore's default CRC32 headers
                    # are refused by several S3-compatible services
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                )
                self._client = await self._stack.enter_async_context(
                    get_session().create_client(
                        "s3",
                        endpoint_url=self.endpoint_url,
                        region_name=self.region,
                        aws_access_key_id=self._access_key_id,
                        aws_secret_access_key=self._secret_access_key,
                        config=config,
                    )
                )
            return self._client

    async def _stream(self, body: Any, key: str, expected: str | None) -> AsyncIterator[bytes]:
        digest = hashlib.sha256() if expected is not None else None
        async with body:
            while True:
                with self._errors("get", key):
                    chunk = await body.read(CHUNK_SIZE)
                if not chunk:
                    break
                if digest is not None:
                    digest.update(chunk)
                yield chunk
        if digest is not None and digest.hexdigest() != expected:
            raise CorruptObject(
                f"object {key!r} hashes to sha256 {digest.hexdigest()}, not the {expected} "
                "recorded when it was stored"
            )

    @contextmanager
    def _errors(self, action: str, key: str) -> Iterator[None]:
        try:
            yield
        except (ClientError, *_TRANSPORT_ERRORS) as exc:
            raise self._failure(action, key, exc) from exc

    def _failure(self, action: str, key: str, exc: Exception) -> StorageError:
        return StorageError(f"S3 could not {action} {key!r} in bucket {self.bucket!r}: {exc}")


class _MultipartUpload:
    """One multipart upload: its id and the parts sent so far."""

    def __init__(self, client: Any, bucket: str, name: str, sha256: str | None) -> None:
        self.client = client
        self.bucket = bucket
        self.name = name
        self.metadata = {SHA256_METADATA: sha256} if sha256 is not None else {}
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []

    async def start(self) -> None:
        created = await self.client.create_multipart_upload(
            Bucket=self.bucket, Key=self.name, Metadata=self.metadata
        )
        self.upload_id = str(created["UploadId"])

    async def send(self, data: bytes) -> None:
        number = len(self.parts) + 1
        sent = await self.client.upload_part(
            Bucket=self.bucket,
            Key=self.name,
            UploadId=self.upload_id,
            PartNumber=number,
            Body=data,
        )
        self.parts.append({"ETag": sent["ETag"], "PartNumber": number})

    async def complete(self) -> None:
        await self.client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self.name,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": self.parts},
        )

    async def abort(self) -> None:
        if self.upload_id is None:
            return
        try:
            await self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=self.name, UploadId=self.upload_id
            )
        except Exception:  # discard_abandoned will; the original error matters more
            log.warning("s3_upload_abort_failed", key=self.name, exc_info=True)


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield  # an async generator that yields nothing


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
