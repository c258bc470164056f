"""A project's forge fields: where its builds post commit statuses.

The token is write-only: answers say ``forge_token_set`` and never the token. The API URL
and repository that answers show are the ones used, derived from ``repo_url`` when they
were not given.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from ferrous.domain.forge import ForgeKind, ForgeSettings

ForgeIn = Annotated[
    ForgeKind | None,
    Field(
        description="Where commit statuses go: `github`, `gitlab`, `gitea` (also Forgejo), "
        "or `none` to stop (which forgets the token).",
    ),
]
ForgeApiUrlIn = Annotated[
    str | None,
    Field(
        max_length=2000,
        description="The forge's API; default `https://api.github.com`, or derived from "
        "`repo_url`'s host (`https://host/api/v4` GitLab, `https://host/api/v1` Gitea). "
        '`""` goes back to the default.',
        examples=["https://gitlab.example.com/api/v4"],
    ),
]
ForgeRepoIn = Annotated[
    str | None,
    Field(
        max_length=255,
        description="`owner/name` (GitLab: the project's path or numeric id); default: from "
        '`repo_url`. `""` goes back to the default.',
        examples=["ci/ferrous"],
    ),
]
ForgeTokenIn = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=4000,
        description="Write-only: a token allowed to post commit statuses (GitHub: "
        "`repo:status`; GitLab: `api`; Gitea: `write:repository`). Answers only say "
        "`forge_token_set`.",
    ),
]


def forge_settings_of(body: Any) -> ForgeSettings | None:
    """The command's forge settings from a body with the four ``forge*`` fields."""
    settings = ForgeSettings(
        kind=body.forge,
        api_url=body.forge_api_url,
        repo=body.forge_repo,
        token=body.forge_token,
    )
    return settings if settings.given else None
