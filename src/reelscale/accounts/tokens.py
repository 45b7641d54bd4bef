"""Minting access and refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from reelscale.accounts.context import AccountsContext
from reelscale.accounts.models import LoginSession, Member, Profile, RefreshToken
from reelscale.accounts.roles import Role, scopes_for
from reelscale.accounts.schemas import TokenOut


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def granted_scopes(member: Member, session: LoginSession, profile: Profile | None) -> list[str]:
    """What the role allows, narrowed by what the sign-in asked for and by a kids profile."""
    allowed = {
        s.value
        for s in scopes_for(Role(member.role), kids_profile=bool(profile and profile.is_kids))
    }
    asked = set(session.scope.split()) if session.scope else allowed
    return sorted(allowed & asked)


def access_token(
    ctx: AccountsContext, *, member: Member, session: LoginSession, profile: Profile | None
) -> tuple[str, list[str]]:
    now = ctx.clock.now()
    scopes = granted_scopes(member, session, profile)
    claims: dict[str, object] = {
        "iss": ctx.settings.token_issuer,
        "aud": ctx.settings.token_audience,
        "sub": str(member.id),
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ctx.settings.access_token_ttl_s)).timestamp()),
        "jti": uuid.uuid4().hex,
        "sid": str(session.id),
        "roles": [member.role],
        "plan": member.plan,
        "scope": " ".join(scopes),
    }
    if profile is not None:
        claims["profile"] = {
            "id": str(profile.id),
            "kids": profile.is_kids,
            "max_maturity": profile.max_maturity,
        }
    return ctx.keys.sign(claims), scopes


def new_refresh_token(ctx: AccountsContext, db_session: AsyncSession, session: LoginSession) -> str:
    token = secrets.token_urlsafe(32)
    db_session.add(
        RefreshToken(
            token_hash=hash_refresh_token(token), session_id=session.id, issued_at=ctx.clock.now()
        )
    )
    return token


def token_pair(
    ctx: AccountsContext,
    db_session: AsyncSession,
    *,
    member: Member,
    session: LoginSession,
    profile: Profile | None,
    with_refresh: bool = True,
) -> TokenOut:
    token, scopes = access_token(ctx, member=member, session=session, profile=profile)
    return TokenOut(
        access_token=token,
        expires_in=ctx.settings.access_token_ttl_s,
        refresh_token=new_refresh_token(ctx, db_session, session) if with_refresh else None,
        scope=" ".join(scopes),
        profile_id=profile.id if profile else None,
    )
