"""Where artifacts, caches and archived logs live in the object store, made and recognised here.

The orphan sweep deletes what no row names, which is only safe for keys this server makes:
a store may be shared with other programs (a bucket without a prefix where S3 writes its
access logs under ``logs/``, by default), and their objects are none of our business. So the
keys are made by the functions below and the sweep touches only what ``is_own_key``
recognises: each part in its exact shape (ids are the domain's UUIDs, the random part 16 hex
digits), nothing that merely starts like ours.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from ferrous.application.artifact_ports import KINDS, PROTECTED, UNPROTECTED
from ferrous.archive import SUFFIX

#: The folders keys start with (the sweep lists these and nothing else).
PREFIXES = ("artifacts/", "caches/", "logs/")
LOG_SUFFIX = ".log.zst"

_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"  # domain.ids.new_id
_RANDOM = r"[0-9a-f]{16}"  # secrets.token_hex(8): a fresh key for every put
_ARCHIVE = re.escape(SUFFIX)
_OWN_KEY = re.compile(
    "|".join(
        (
            rf"artifacts/{_ID}/{_ID}/{_ID}/(?:{'|'.join(KINDS)})-{_RANDOM}{_ARCHIVE}",
            rf"caches/{_ID}/(?:{PROTECTED}|{UNPROTECTED})/[0-9a-f]{{64}}-{_RANDOM}{_ARCHIVE}",
            rf"logs/{_ID}/{_ID}/{_ID}-{_RANDOM}{re.escape(LOG_SUFFIX)}",
        )
    )
)


def artifact_key(project_id: str, build_id: str, job_id: str, kind: str) -> str:
    return f"artifacts/{project_id}/{build_id}/{job_id}/{kind}-{secrets.token_hex(8)}{SUFFIX}"


def cache_key(project_id: str, scope: str, key: str) -> str:
    """The cache key (``cache:key``, any text) enters as its sha256: keys stay short and
    safe whatever people name their caches."""
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"caches/{project_id}/{scope}/{digest}-{secrets.token_hex(8)}{SUFFIX}"


def log_key(project_id: str, build_id: str, job_id: str) -> str:
    return f"logs/{project_id}/{build_id}/{job_id}-{secrets.token_hex(8)}{LOG_SUFFIX}"


def is_own_key(key: str) -> bool:
    """Whether ``key`` (relative to the store's root) has the shape of a key made above."""
    return _OWN_KEY.fullmatch(key) is not None
