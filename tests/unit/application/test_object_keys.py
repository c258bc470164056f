"""The keys of artifacts, caches and archived logs, and the matcher the orphan sweep trusts.

Real keys come from the functions the artifact, cache and log code calls (and, for
artifacts, from ``artifacts.object_key`` itself); lookalikes are what other programs write
into a shared bucket (S3 server access logs under ``logs/``) or keys that are ours in all
but one part.
"""

from __future__ import annotations

import pytest

from ferrous.application.artifact_ports import ARCHIVE, JUNIT, PROTECTED, UNPROTECTED, JobContext
from ferrous.application.artifacts import object_key
from ferrous.application.object_keys import (
    PREFIXES,
    artifact_key,
    cache_key,
    is_own_key,
    log_key,
)
from ferrous.domain.ids import new_id
from ferrous.domain.statuses import JobStatus

# fixed ids of new_id()'s shape: parametrized ids must be the same in every xdist worker
P, B, J = (
    "01a21c90-09a1-7149-9c2a-8394ed8706ce",
    "01a21c90-09a1-714e-a9ce-c9838cfadb9e",
    "01a21c90-09a1-7151-b4f1-2f4c1a9d0e77",
)
HEX = "0123456789abcdef"


def test_the_keys_the_server_makes_are_its_own() -> None:
    keys = [
        artifact_key(P, B, J, ARCHIVE),
        artifact_key(P, B, J, JUNIT),
        cache_key(P, PROTECTED, "deps-v1"),
        cache_key(P, UNPROTECTED, "any text at all / even ../ this"),
        log_key(P, B, J),
    ]
    assert all(is_own_key(key) for key in keys), keys
    assert all(key.startswith(PREFIXES) for key in keys)
    assert artifact_key(P, B, J, ARCHIVE) != artifact_key(P, B, J, ARCHIVE)  # fresh every put
    fresh = new_id(), new_id(), new_id()  # the ids of today, not only the fixed ones above
    assert is_own_key(log_key(*fresh))
    assert is_own_key(artifact_key(*fresh, ARCHIVE))


def test_an_uploads_key_is_its_own() -> None:
    job = JobContext(
        job_id=J,
        build_id=B,
        project_id=P,
        agent_id="agent",
        status=JobStatus.RUNNING,
        protected_ref=False,
        expire_in=None,
        project_expire_in=None,
    )
    key = object_key(job, ARCHIVE)
    assert key.startswith(f"artifacts/{P}/{B}/{J}/archive-")
    assert is_own_key(key)


def test_the_shapes_are_those_the_docs_show() -> None:
    cache = cache_key(P, PROTECTED, "k")
    # sha256("k")
    digest = "8254c329a92850f6d539dd376f4816ee2764517da5e0235514af433164480d7a"
    assert cache.startswith(f"caches/{P}/protected/{digest}-")
    assert cache.endswith(".tar.zst")
    assert len(cache) == len(f"caches/{P}/protected/{digest}-") + 24
    log = log_key(P, B, J)
    assert log.startswith(f"logs/{P}/{B}/{J}-")
    assert log.endswith(".log.zst")


@pytest.mark.parametrize(
    "key",
    [
        # S3 server access logs (TargetPrefix "logs/") and other programs' files
        "logs/2026-11-27-10-15-30-ABCDEF0123456789",
        "logs/access-2026-11-27",
        f"logs/{P}/{B}/access.log",
        "artifacts/readme.txt",
        "caches/",
        "ferrous-installation.json",
        # ours in all but one part
        f"logs/{P}/{B}/{J}-{HEX}.log",  # suffix
        f"logs/{P}/{B}/{J}-{HEX}.log.zst.bak",  # trailing text
        f"logs/{P}/{B}/{J}-{HEX[:-1]}.log.zst",  # 15 hex digits
        f"logs/{P}/{B}/{J}-{HEX.upper()}.log.zst",  # upper case
        f"logs/{P}/{B}/x/{J}-{HEX}.log.zst",  # a level too deep
        f"logs/{P}/{J}-{HEX}.log.zst",  # a level missing
        f"logs/p/{B}/{J}-{HEX}.log.zst",  # not an id
        f"logs/{P.upper()}/{B}/{J}-{HEX}.log.zst",
        f"prefix/logs/{P}/{B}/{J}-{HEX}.log.zst",  # not at the root
        f"artifacts/{P}/{B}/{J}/other-{HEX}.tar.zst",  # not a kind
        f"artifacts/{P}/{B}/{J}/archive-{HEX}.tar.gz",
        f"artifacts/{P}/{B}/{J}/archive-{HEX}.tar.zst/",
        f"artifacts/{P}/{B}/{J}/.tmp-{HEX}",
        f"caches/{P}/public/{'0' * 64}-{HEX}.tar.zst",  # not a scope
        f"caches/{P}/protected/{'0' * 63}-{HEX}.tar.zst",  # not a sha256
        f"caches/{P}/protected/key-{HEX}.tar.zst",
        f"logs/{P}/{B}/{J}-{HEX}.log.zst\n",
    ],
)
def test_lookalikes_are_not(key: str) -> None:
    assert not is_own_key(key)


def test_a_real_key_with_one_part_changed_is_not() -> None:
    """Guard for the lookalikes above: the same template with the right parts matches."""
    assert is_own_key(f"logs/{P}/{B}/{J}-{HEX}.log.zst")
    assert is_own_key(f"artifacts/{P}/{B}/{J}/junit-{HEX}.tar.zst")
    assert is_own_key(f"caches/{P}/protected/{'0' * 64}-{HEX}.tar.zst")
