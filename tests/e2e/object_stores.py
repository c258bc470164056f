"""The object store of an end-to-end server, seen from outside it: the default folder
(``data_dir/objects``) or S3 (a real ``moto_server``), so a test can list, read and corrupt
the objects the server wrote without going through the server.

A test module's ``store`` fixture, parametrized over ``STORES``, enters ``open_store``;
``store.env`` is what the server's environment needs (nothing for the folder: it is the
default) and ``store.data_dir`` the data dir to start the server in.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.s3 import MotoServer, s3_env

STORES = ["local", "s3"]
PREFIX = "ci"  # objects under a prefix of the bucket, as a shared bucket would hold them


@dataclass
class StoreView:
    kind: str  # "local" or "s3"
    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    s3: Any = None  # a boto3 S3 client of the moto server
    bucket: str = ""

    @property
    def root(self) -> Path:
        return self.data_dir / "objects"

    def keys(self, prefix: str = "") -> list[str]:
        """Every object key under ``prefix`` (keys as the server chose them: no S3 prefix)."""
        if self.kind == "local":
            base = self.root / prefix if prefix else self.root
            found = base.rglob("*") if base.is_dir() else iter(())
            return sorted(p.relative_to(self.root).as_posix() for p in found if p.is_file())
        keys: list[str] = []
        pages = self.s3.get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=self.bucket, Prefix=f"{PREFIX}/{prefix}"):
            keys += [item["Key"].removeprefix(f"{PREFIX}/") for item in page.get("Contents", [])]
        return sorted(keys)

    def read(self, key: str) -> bytes:
        if self.kind == "local":
            return (self.root / key).read_bytes()
        body: bytes = self.s3.get_object(Bucket=self.bucket, Key=f"{PREFIX}/{key}")["Body"].read()
        return body

    def write(self, key: str, data: bytes) -> None:
        """Replace an object's bytes behind the server's back (bit rot, a tampering hand)."""
        if self.kind == "local":
            (self.root / key).write_bytes(data)
        else:
            self.s3.put_object(Bucket=self.bucket, Key=f"{PREFIX}/{key}", Body=data)


@contextmanager
def open_store(kind: str, data_dir: Path) -> Iterator[StoreView]:
    if kind == "local":
        yield StoreView("local", data_dir)
        return
    with MotoServer() as moto:
        bucket = moto.create_bucket()
        env = s3_env(moto, bucket, PREFIX)
        yield StoreView("s3", data_dir, env=env, s3=moto.client(), bucket=bucket)
