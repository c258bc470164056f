"""Artifacts and caches: the agent protocol's upload answers and the public listings."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ferrous.api.schemas.common import UtcDatetime

ArtifactKind = Literal["archive", "junit"]
SHA256_PATTERN = r"^[0-9a-fA-F]{64}$"


class TestTotals(BaseModel):
    total: int
    failed: int = Field(description="Failed and errored test cases.")


class ArtifactStored(BaseModel):
    kind: ArtifactKind
    name: str
    size: int = Field(description="Bytes stored (the compressed archive).")
    sha256: str
    files: int = Field(description="Members of the archive that are not directories.")
    warnings: list[str] = Field(
        default_factory=list, description="What was skipped (malformed reports, caps)."
    )
    tests: TestTotals | None = Field(None, description="For `junit`: the test cases read.")


class CacheStored(BaseModel):
    key: str
    size: int
    sha256: str


class ArtifactOut(BaseModel):
    kind: ArtifactKind
    name: str
    filename: str = Field(description="What a download is called: `<name>.tar.zst`.")
    size: int
    sha256: str
    files: int
    created_at: UtcDatetime
    expires_at: UtcDatetime | None = Field(description="None: kept until deleted.")
    locked: bool = Field(
        description="Kept past `expires_at`: its build succeeded on a branch or tag (a retry "
        "running or failing since does not undo that), in a project with "
        "`keep_latest_artifacts`, and no newer build of its pipeline and ref (same kind and "
        "name: a tag `v1` does not release a branch `v1`) has succeeded since. A build of a "
        "bare commit locks nothing.",
    )


class ArtifactList(BaseModel):
    items: list[ArtifactOut]


class ArtifactMember(BaseModel):
    path: str
    size: int
    kind: Literal["file", "dir", "symlink", "hardlink"]


class ArtifactMembers(BaseModel):
    items: list[ArtifactMember]
    truncated: bool = Field(description="The archive has more members than listed (10,000).")
