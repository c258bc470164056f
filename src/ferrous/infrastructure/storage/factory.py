"""Choosing the object store from ``FERROUS_STORAGE_URL``.

The S3 adapter is imported only when the URL asks for it: loading aiobotocore costs a server
on local storage ~0.7 s of start-up for nothing.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from ferrous.application.storage_ports import ObjectStore
from ferrous.domain.errors import ConfigInvalid
from ferrous.infrastructure.settings import Settings
from ferrous.infrastructure.storage.local import LocalObjectStore

USAGE = "use file:///absolute/path or s3://bucket/optional/prefix, or leave it unset"


def object_store(settings: Settings) -> ObjectStore:
    """The store ``settings.storage_url`` names; nothing connects yet.

    Unset: the folder ``data_dir/objects``. ``file:///abs/path``: that folder.
    ``s3://bucket/prefix``: that bucket (keys under the optional prefix), reached with the
    ``s3_*`` settings. Anything else: ConfigInvalid.
    """
    url = settings.storage_url
    if not url:
        return LocalObjectStore(settings.data_dir.resolve() / "objects")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if parts.query or parts.fragment:
        raise ConfigInvalid(f"FERROUS_STORAGE_URL {url!r} has a query or fragment: {USAGE}")
    if scheme == "file":
        path = Path(unquote(parts.path))
        if parts.netloc not in ("", "localhost") or not path.is_absolute() or path == Path("/"):
            raise ConfigInvalid(
                f"FERROUS_STORAGE_URL {url!r} must name an absolute folder other than /: {USAGE}"
            )
        return LocalObjectStore(path)
    if scheme == "s3":
        if not parts.netloc or "@" in parts.netloc or ":" in parts.netloc:
            raise ConfigInvalid(
                f"FERROUS_STORAGE_URL {url!r} must name a bucket (credentials and endpoint go "
                "in FERROUS_S3_ACCESS_KEY_ID, FERROUS_S3_SECRET_ACCESS_KEY and "
                f"FERROUS_S3_ENDPOINT_URL): {USAGE}"
            )
        from ferrous.infrastructure.storage.s3 import S3ObjectStore  # noqa: PLC0415 (see above)

        return S3ObjectStore(
            bucket=parts.netloc,
            prefix=unquote(parts.path).strip("/"),
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
        )
    raise ConfigInvalid(f"unsupported FERROUS_STORAGE_URL {url!r}: {USAGE}")
