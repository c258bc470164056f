"""A job's artifacts for people: list them, list the archive's files, download, fetch one file.

Expired artifacts are gone here (404) even before the cleanup deletes them. A download
streams the stored archive with its sha256 in ``X-Checksum-Sha256``; one file is cut out of
the archive on the server after its checksum was verified, and is always sent as an
attachment of type ``application/octet-stream`` (artifacts are anyone's bytes: never
rendered by a browser on the API's origin).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response, StreamingResponse

from ferrous.api.downloads import artifacts_of, download_responses, streamed
from ferrous.api.permissions import require
from ferrous.api.schemas.artifacts import (
    ArtifactKind,
    ArtifactList,
    ArtifactMember,
    ArtifactMembers,
    ArtifactOut,
)
from ferrous.api.schemas.common import problems
from ferrous.api.services import ApiServices
from ferrous.application.artifact_reads import archive_members, artifact_file, list_artifacts
from ferrous.archive import SUFFIX

OCTETS = "application/octet-stream"


def build_router(services: ApiServices) -> APIRouter:
    router = APIRouter(tags=["artifacts"])

    @router.get(
        "/jobs/{job_id}/artifacts", dependencies=[require("jobs:read")], responses=problems(404)
    )
    async def list_job_artifacts(job_id: str) -> ArtifactList:
        """The job's stored archives: `archive` (`artifacts:paths`) and `junit` reports."""
        found = await list_artifacts(artifacts_of(services), job_id)
        return ArtifactList(
            items=[
                ArtifactOut(
                    kind=a.kind,  # type: ignore[arg-type]  # rows hold only the two kinds
                    name=a.name,
                    filename=f"{a.name}{SUFFIX}",
                    size=a.size,
                    sha256=a.sha256,
                    files=a.files,
                    created_at=a.created_at,
                    expires_at=a.expires_at,
                    locked=a.locked,
                )
                for a in found
            ]
        )

    @router.get(
        "/jobs/{job_id}/artifacts/files",
        dependencies=[require("jobs:read")],
        responses=problems(404),
    )
    async def list_artifact_files(job_id: str) -> ArtifactMembers:
        """The members of the job's `archive`, as listed when it was uploaded."""
        members, truncated = await archive_members(artifacts_of(services), job_id)
        return ArtifactMembers(
            items=[ArtifactMember(path=m.path, size=m.size, kind=m.kind) for m in members],
            truncated=truncated,
        )

    @router.get(
        "/jobs/{job_id}/artifacts/download",
        dependencies=[require("jobs:read")],
        response_class=StreamingResponse,
        responses={**download_responses(), **problems(404, 422)},
    )
    async def download_artifacts(
        job_id: str,
        kind: Annotated[ArtifactKind, Query(description="Which archive.")] = "archive",
    ) -> Response:
        """The archive (`.tar.zst`) as an attachment; check its `X-Checksum-Sha256`."""
        download = await artifacts_of(services).download(job_id, kind)
        return streamed(download, as_attachment=True)

    @router.get(
        "/jobs/{job_id}/artifacts/files/{path:path}",
        dependencies=[require("jobs:read")],
        response_class=StreamingResponse,
        responses={**download_responses(OCTETS), **problems(404, 422)},
    )
    async def get_artifact_file(job_id: str, path: str) -> Response:
        """One regular file of the job's `archive`; 500 `corrupt-object` when the stored
        archive no longer matches its checksum."""
        download = await artifact_file(artifacts_of(services), job_id, path)
        return streamed(download, media_type=OCTETS, as_attachment=True)

    return router
