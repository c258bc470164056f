"""The agent protocol's files: artifacts up and down, caches by key (DESIGN §5).

Bodies are ``.tar.zst`` archives streamed both ways, never held whole; the sha256 travels
in ``X-Checksum-Sha256`` (checked by the store on upload: 422 ``checksum-mismatch`` and
nothing stored). Only the agent holding a running job's lease uploads for it or downloads
through it (409 otherwise); a download names a job of the same build.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from ferrous.api.downloads import (
    artifacts_of,
    caches_of,
    download_responses,
    refuse_declared_size,
    streamed,
    upload_body,
)
from ferrous.api.permissions import require
from ferrous.api.routers.agent_protocol import AgentId
from ferrous.api.schemas.artifacts import (
    SHA256_PATTERN,
    ArtifactKind,
    ArtifactStored,
    CacheStored,
    TestTotals,
)
from ferrous.api.schemas.common import problems
from ferrous.api.services import ApiServices

Checksum = Annotated[
    str,
    Header(
        alias="X-Checksum-Sha256",
        pattern=SHA256_PATTERN,
        description="The sha256 (hex) of the body; a body that does not match is refused.",
    ),
]
CacheKey = Annotated[
    str,
    Path(
        min_length=1,
        max_length=255,
        description="As the job computed it, percent-encoded (`/` as `%2F`).",
    ),
]


def build_router(services: ApiServices) -> APIRouter:
    router = APIRouter(prefix="/agent", tags=["agent protocol"])

    @router.put(
        "/jobs/{job_id}/artifacts/{kind}",
        status_code=201,
        dependencies=[require("agent:protocol")],
        responses=problems(401, 404, 409, 413, 422),
        openapi_extra=upload_body(),
    )
    async def upload_artifact(
        job_id: str,
        kind: ArtifactKind,
        request: Request,
        agent_id: AgentId,
        checksum: Checksum,
        name: Annotated[
            str,
            Query(min_length=1, max_length=255, description="The expanded `artifacts:name`."),
        ] = "artifacts",
    ) -> ArtifactStored:
        """Store the job's `archive` (`artifacts:paths`) or `junit` reports, replacing the
        earlier one of that kind. A `junit` upload's files are read as JUnit XML into the
        job's test cases (a malformed file is a warning). 422 `unsafe-archive` or
        `corrupt-archive` for an archive that could not be unpacked safely."""
        artifacts = artifacts_of(services)
        refuse_declared_size(request, artifacts.max_bytes, "an artifact archive")
        uploaded = await artifacts.upload(
            agent_id=agent_id,
            job_id=job_id,
            kind=kind,
            name=name,
            chunks=request.stream(),
            sha256=checksum.lower(),
        )
        tests = uploaded.tests
        return ArtifactStored(
            kind=kind,
            name=uploaded.artifact.name,
            size=uploaded.artifact.size,
            sha256=uploaded.artifact.sha256,
            files=uploaded.artifact.files,
            warnings=list(uploaded.warnings),
            tests=None if tests is None else TestTotals(total=tests.total, failed=tests.failed),
        )

    @router.get(
        "/jobs/{job_id}/dependencies/{source_job_id}/artifacts",
        dependencies=[require("agent:protocol")],
        response_class=StreamingResponse,
        responses={**download_responses(), **problems(401, 404, 409)},
    )
    async def download_artifact(job_id: str, source_job_id: str, agent_id: AgentId) -> Response:
        """The `archive` of `source_job_id` (a job of this job's build), streamed; 404 when
        it has none or they expired."""
        download = await artifacts_of(services).for_agent(
            agent_id=agent_id, job_id=job_id, source_job_id=source_job_id
        )
        return streamed(download)

    @router.get(
        "/jobs/{job_id}/caches/{key:path}",
        dependencies=[require("agent:protocol")],
        response_class=StreamingResponse,
        responses={**download_responses(), **problems(401, 404, 409, 422)},
    )
    async def restore_cache(job_id: str, key: CacheKey, agent_id: AgentId) -> Response:
        """The project's cache under `key`, in the scope of the job's build (protected
        refs have their own caches); 404 when there is none."""
        download = await caches_of(services).restore(agent_id=agent_id, job_id=job_id, key=key)
        return streamed(download)

    @router.put(
        "/jobs/{job_id}/caches/{key:path}",
        status_code=201,
        dependencies=[require("agent:protocol")],
        responses=problems(401, 404, 409, 413, 422),
        openapi_extra=upload_body(),
    )
    async def save_cache(
        job_id: str, key: CacheKey, request: Request, agent_id: AgentId, checksum: Checksum
    ) -> CacheStored:
        """Store the cache under `key`, replacing the one there."""
        caches = caches_of(services)
        refuse_declared_size(request, caches.max_bytes, "a cache archive")
        cache = await caches.save(
            agent_id=agent_id,
            job_id=job_id,
            key=key,
            chunks=request.stream(),
            sha256=checksum.lower(),
        )
        return CacheStored(key=cache.key, size=cache.size, sha256=cache.sha256)

    return router
