"""People make and revoke API tokens: personal ones for themselves, service ones (admins).

The plain token is returned once, by ``create_api_token``; only its hash is stored. A
person sees and revokes their own tokens; an admin may revoke anybody's. A token that is
not the caller's and that the caller may not revoke is "not found", so that token ids do
not tell who has tokens.
"""

from __future__ import annotations

from ferrous.application.commands import CreateApiToken, RevokeApiToken
from ferrous.application.dependencies import Dependencies
from ferrous.application.ports import UnitOfWork
from ferrous.application.secret_tokens import expiry, new_secret
from ferrous.domain.access import Principal, PrincipalKind, Role
from ferrous.domain.api_token import TOKEN_PREFIXES, ApiToken, ApiTokenKind
from ferrous.domain.errors import NotFound, PermissionDenied


def _person(actor: Principal) -> None:
    if actor.kind != PrincipalKind.USER:
        raise PermissionDenied("only a person signed in can manage API tokens")


async def create_api_token(
    cmd: CreateApiToken, uow: UnitOfWork, deps: Dependencies
) -> tuple[ApiToken, str]:
    actor = cmd.actor
    _person(actor)
    if cmd.kind == ApiTokenKind.SERVICE and actor.role != Role.ADMIN:
        raise PermissionDenied("only admins make service tokens")
    user = await uow.users.get(actor.id)
    if not user.active:
        raise PermissionDenied(f"the account {user.username} is deactivated")
    now = deps.clock.now()
    plain, token_hash = new_secret(TOKEN_PREFIXES[cmd.kind])
    token = ApiToken.issue(
        user_id=user.id,
        name=cmd.name,
        kind=cmd.kind,
        plain=plain,
        token_hash=token_hash,
        now=now,
        scopes=cmd.scopes,
        expires_at=expiry(now, cmd.expires_in, cmd.expires_at),
    )
    await uow.api_tokens.add(token)
    await uow.commit()
    return token, plain


async def revoke_api_token(cmd: RevokeApiToken, uow: UnitOfWork, deps: Dependencies) -> ApiToken:
    """Revoking again changes nothing."""
    actor = cmd.actor
    _person(actor)
    token = await uow.api_tokens.get(cmd.token_id)
    if token.user_id != actor.id and actor.role != Role.ADMIN:
        raise NotFound(f"no API token {cmd.token_id}")
    token.revoke(deps.clock.now())
    await uow.api_tokens.save(token)
    await uow.commit()
    return token
