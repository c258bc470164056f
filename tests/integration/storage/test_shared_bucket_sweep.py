"""The orphan sweep in a shared S3 bucket (moto), with each installation's own SQLite database.

Two ways a bucket is shared by mistake: S3 server access logs written under ``logs/`` of a
bucket used without a prefix, and two installations (dev and prod) on one bucket and prefix.
Objects are dated by moto (now) and uploads from 2010, so the cleanup's clock runs days ahead
to make everything older than the grace.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ferrous.application.artifact_ports import ARCHIVE
from ferrous.application.object_keys import artifact_key, log_key
from ferrous.application.retention import ORPHAN_INTERVAL, Retention, RetentionPolicy
from ferrous.application.store_marker import MARKER_KEY, read_marker
from ferrous.domain.ids import new_id
from ferrous.infrastructure.sql import create_engine, migrate
from ferrous.infrastructure.sql.retention_queries import SqlRetentionIndex
from ferrous.infrastructure.storage.s3 import S3ObjectStore
from tests.integration.sql.factories import chunks
from tests.s3 import MotoServer, s3_store

pytestmark = pytest.mark.integration

ACCESS_LOGS = ("logs/2026-11-27-10-15-30-ABCDEF0123456789", "logs/access-2026-11-27")


class Clock:
    def __init__(self) -> None:
        self.at = datetime.now(UTC) + timedelta(days=3)  # everything stored is old by then

    def now(self) -> datetime:
        return self.at


@pytest.fixture
async def installations(tmp_path: Path) -> AsyncIterator[list[SqlRetentionIndex]]:
    """Two installations: a migrated SQLite database each."""
    engines = [create_engine(f"sqlite:///{tmp_path / f'{name}.db'}") for name in ("dev", "prod")]
    try:
        for engine in engines:
            await migrate(engine)
        yield [SqlRetentionIndex(engine) for engine in engines]
    finally:
        for engine in engines:
            await engine.dispose()


@pytest.fixture
async def store(moto: MotoServer) -> AsyncIterator[tuple[S3ObjectStore, str]]:
    bucket = moto.create_bucket()
    objects = s3_store(moto, bucket)  # no prefix: keys at the bucket's root
    yield objects, bucket
    await objects.aclose()


def a_log() -> str:
    return log_key(new_id(), new_id(), new_id())


async def test_another_programs_logs_and_uploads_survive_the_sweep(
    moto: MotoServer,
    store: tuple[S3ObjectStore, str],
    installations: list[SqlRetentionIndex],
) -> None:
    objects, bucket = store
    client = moto.client()
    for name in ACCESS_LOGS:
        client.put_object(Bucket=bucket, Key=name, Body=b"access log")
    foreign_upload = client.create_multipart_upload(Bucket=bucket, Key="logs/big-export.gz")
    ours = artifact_key(new_id(), new_id(), new_id(), ARCHIVE)
    client.create_multipart_upload(Bucket=bucket, Key=ours)  # a put cut short by a crash
    orphan = a_log()
    await objects.put(orphan, chunks(b"log"))
    clock = Clock()
    retention = Retention(installations[0], objects, RetentionPolicy(), clock)

    first = await retention.run_pass()  # claims the store
    clock.at += ORPHAN_INTERVAL
    report = await retention.run_pass()

    assert (first.swept, report.swept, report.orphans, report.abandoned_uploads) == (
        False,
        True,
        1,
        1,
    )
    listed = sorted(item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"])
    assert listed == sorted([*ACCESS_LOGS, MARKER_KEY])
    uploads = client.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [
        ("logs/big-export.gz", foreign_upload["UploadId"])
    ]
    marker = await read_marker(objects)
    assert marker is not None
    assert marker.installation_id == await installations[0].installation_id()
    assert marker.last_sweep == clock.at


async def test_two_installations_on_one_store_keep_each_others_objects(
    store: tuple[S3ObjectStore, str], installations: list[SqlRetentionIndex]
) -> None:
    objects, _ = store
    dev_index, prod_index = installations
    prod_objects = {a_log(), a_log()}  # rows in prod's database, none in dev's
    for key in prod_objects:
        await objects.put(key, chunks(b"prod"))
    clock = Clock()
    dev = Retention(dev_index, objects, RetentionPolicy(), clock)
    prod = Retention(prod_index, objects, RetentionPolicy(), clock)

    await dev.run_pass()  # dev claims the store first
    report = await prod.run_pass()  # prod finds dev's marker and says so in it
    prod_id, dev_id = await prod_index.installation_id(), await dev_index.installation_id()
    assert (report.swept, report.shared_with) == (False, (dev_id,))
    clock.at += ORPHAN_INTERVAL
    report = await dev.run_pass()  # due, but the store is shared now

    assert (report.swept, report.orphans, report.shared_with) == (False, 0, (prod_id,))
    assert {key async for key in objects.keys("logs/")} == prod_objects
    marker = await read_marker(objects)
    assert marker is not None
    assert (marker.installation_id, marker.others) == (dev_id, (prod_id,))
