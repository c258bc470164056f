"""``FERROUS_STORAGE_URL`` picks the object store; a URL it cannot use says what would do."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferrous.domain.errors import ConfigInvalid
from ferrous.infrastructure.settings import Settings
from ferrous.infrastructure.storage.factory import object_store
from ferrous.infrastructure.storage.local import LocalObjectStore
from ferrous.infrastructure.storage.s3 import S3ObjectStore


def test_default_is_a_folder_in_the_data_dir(tmp_path: Path) -> None:
    store = object_store(Settings(data_dir=tmp_path))
    assert isinstance(store, LocalObjectStore)
    assert store.root == tmp_path.resolve() / "objects"


def test_file_url(tmp_path: Path) -> None:
    store = object_store(Settings(storage_url=f"file://{tmp_path}/my%20objects"))
    assert isinstance(store, LocalObjectStore)
    assert store.root == tmp_path / "my objects"


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("s3://ci", "ci", ""),
        ("s3://ci/", "ci", ""),
        ("s3://ci/ferrous/objects/", "ci", "ferrous/objects/"),
        ("S3://ci/a", "ci", "a/"),
    ],
)
def test_s3_url(url: str, bucket: str, prefix: str) -> None:
    settings = Settings(
        storage_url=url,
        s3_endpoint_url="http://127.0.0.1:9000",
        s3_region="eu-west-1",
        s3_access_key_id="key",
        s3_secret_access_key="secret",
    )
    store = object_store(settings)
    assert isinstance(store, S3ObjectStore)
    assert (store.bucket, store.prefix) == (bucket, prefix)
    assert (store.endpoint_url, store.region) == ("http://127.0.0.1:9000", "eu-west-1")


@pytest.mark.parametrize(
    "url",
    [
        "file://relative/path",
        "file:relative",
        "file:///",
        "s3://",
        "s3:///prefix-only",
        "s3://key:secret@bucket/x",
        "s3://bucket/x?region=eu",
        "gs://bucket",
        "/plain/path",
    ],
)
def test_unusable_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigInvalid, match="FERROUS_STORAGE_URL"):
        object_store(Settings(storage_url=url))
