"""Members and sign-in: sign up, log in, refresh, log out, roles.

Logging in spans two transactions on purpose: the attempt is reserved against the
throttle and committed before the (slow) password check, so that concurrent guesses are
counted; the session is written only after the check passes.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from reelscale.accounts.context import SOURCE, AccountsContext
from reelscale.accounts.models import LoginSession, Member, Profile, RefreshToken
from reelscale.accounts.roles import Role, scopes_for
from reelscale.accounts.schemas import LoginIn, SignupIn, TokenOut
from reelscale.accounts.tokens import hash_refresh_token, token_pair
from reelscale.core.db import Database
from reelscale.core.errors import BadRequest, Conflict, NotFound, Unauthorized
from reelscale.core.identity import Principal

log = logging.getLogger("reelscale.accounts")


async def signup(*, db: Database, ctx: AccountsContext, data: SignupIn) -> Member:
    """Create a member with the `member` role."""
    # Hash before the transaction: argon2 is slow, and on SQLite a write transaction holds
    # the single writer connection that every other write is queued behind.
    password_hash = await ctx.hasher.hash(data.password)
    async with db.transaction() as db_session:
        member = await create_member(
            db_session=db_session,
            ctx=ctx,
            email=data.email,
            password_hash=password_hash,
            display_name=data.display_name or data.email.split("@", 1)[0][:50],
            role=Role.MEMBER,
        )
    await _emit(ctx, "auth.signup", subject=str(member.id), data={})
    return member


async def create_member(
    *,
    db_session: AsyncSession,
    ctx: AccountsContext,
    email: str,
    password_hash: str,
    display_name: str,
    role: Role,
    plan: str = "standard",
    member_id: uuid.UUID | None = None,
) -> Member:
    """Insert a member; a taken email is a Conflict, also when two sign-ups race."""
    email = email.lower()
    if await db_session.scalar(select(Member.id).where(Member.email == email)) is not None:
        raise Conflict("an account with this email already exists")
    member = Member(
        id=member_id or uuid.uuid4(),
        email=email,
        password_hash=password_hash,
        display_name=display_name,
        role=role.value,
        plan=plan,
        profile_count=0,
        created_at=ctx.clock.now(),
    )
    db_session.add(member)
    try:
        await db_session.flush()
    except IntegrityError:
        raise Conflict("an account with this email already exists") from None
    return member


async def get_member(*, db_session: AsyncSession, member_id: uuid.UUID) -> Member:
    member = await db_session.get(Member, member_id)
    if member is None:
        raise NotFound("no such member")
    return member


async def login(
    *, db: Database, ctx: AccountsContext, data: LoginIn, client_address: str
) -> TokenOut:
    """Check the password under the throttle and open a session with a token pair."""
    async with db.session() as db_session:
        member = await db_session.scalar(select(Member).where(Member.email == data.email))
    device_id = ctx.throttle.trusted_device(data.device_token, member.id if member else None)

    async with db.transaction() as db_session:
        reservation = await ctx.throttle.reserve_login(
            db_session=db_session,
            email=data.email,
            client_address=client_address,
            device_id=device_id,
        )
    ok = await ctx.hasher.verify(member.password_hash if member else None, data.password)
    if not ok or member is None:
        await _emit(
            ctx,
            "auth.login.failed",
            subject=str(member.id) if member else None,
            data={
                "email_hash": _email_hash(data.email),
                "known_account": member is not None,
                "client_address": client_address,
                "trusted_device": device_id is not None,
            },
        )
        raise Unauthorized("wrong email or password")

    # Only now, with the password proven, may the answer depend on the account's role.
    try:
        requested = _requested_scopes(data.scope, member)
    except BadRequest:
        async with db.transaction() as db_session:
            await ctx.throttle.forgive(db_session=db_session, reservation=reservation)
        raise
    now = ctx.clock.now()
    async with db.transaction() as db_session:
        await ctx.throttle.forgive(db_session=db_session, reservation=reservation)
        member = await get_member(db_session=db_session, member_id=member.id)
        session = LoginSession(
            id=uuid.uuid4(),
            member_id=member.id,
            scope=" ".join(sorted(requested)),
            created_at=now,
            expires_at=now + timedelta(seconds=ctx.settings.refresh_token_ttl_s),
            client_address=client_address[:64],
        )
        db_session.add(session)
        await db_session.flush()
        tokens = token_pair(ctx, db_session, member=member, session=session, profile=None)
    tokens.device_token = data.device_token if device_id else ctx.throttle.device_token(member.id)
    await _emit(
        ctx,
        "auth.login.succeeded",
        subject=str(member.id),
        data={"session_id": str(session.id), "client_address": client_address},
    )
    return tokens


def _requested_scopes(scope: str | None, member: Member) -> set[str]:
    allowed = {s.value for s in scopes_for(Role(member.role))}
    if scope is None:
        return allowed
    asked = set(scope.split())
    if not asked <= allowed:
        raise BadRequest(f"scopes not granted to this account: {' '.join(sorted(asked - allowed))}")
    return asked


async def refresh(
    *, db: Database, ctx: AccountsContext, refresh_token: str, client_address: str
) -> TokenOut:
    """Rotate a refresh token. Presenting a spent one revokes its whole session."""
    now = ctx.clock.now()
    token_hash = hash_refresh_token(refresh_token)
    reused: LoginSession | None = None
    ended: LoginSession | None = None
    async with db.transaction() as db_session:
        row = await db_session.get(RefreshToken, token_hash)
        session = await db_session.get(LoginSession, row.session_id) if row else None
        if row is None or session is None:
            raise Unauthorized("unknown refresh token")
        if session.revoked_at is not None or session.expires_at <= now:
            raise Unauthorized("this session has ended; sign in again")
        spent = await db_session.execute(
            update(RefreshToken)
            .where(RefreshToken.token_hash == token_hash, RefreshToken.used_at.is_(None))
            .values(used_at=now)
        )
        if getattr(spent, "rowcount", 0) != 1:
            _revoke(session, now, reason="refresh_reuse")
            reused = session
        else:
            member = await get_member(db_session=db_session, member_id=session.member_id)
            profile = (
                await db_session.get(Profile, session.profile_id) if session.profile_id else None
            )
            if session.profile_id is not None and profile is None:
                # Never fall back to an account-wide token for a device left on a deleted
                # (say, kids) profile.
                _revoke(session, now, reason="profile_deleted")
                ended = session
            else:
                tokens = token_pair(
                    ctx, db_session, member=member, session=session, profile=profile
                )
    if ended is not None:
        await announce_revocation(ctx, ended, reason="profile_deleted")
        raise Unauthorized("the profile of this session was deleted; sign in again")
    if reused is not None:
        await _emit(
            ctx,
            "auth.token.reuse_detected",
            subject=str(reused.member_id),
            data={"session_id": str(reused.id), "client_address": client_address},
        )
        await announce_revocation(ctx, reused, reason="refresh_reuse")
        raise Unauthorized("this refresh token was already used; the session is revoked")
    await _emit(
        ctx,
        "auth.token.refreshed",
        subject=str(session.member_id),
        data={"session_id": str(session.id), "client_address": client_address},
    )
    return tokens


async def logout(
    *, db: Database, ctx: AccountsContext, principal: Principal, refresh_token: str | None
) -> None:
    """End the caller's session (and the one the refresh token belongs to, if given)."""
    now = ctx.clock.now()
    ended: list[LoginSession] = []
    async with db.transaction() as db_session:
        ids: set[uuid.UUID] = set()
        if principal.session_id:
            ids.add(uuid.UUID(principal.session_id))
        if refresh_token:
            row = await db_session.get(RefreshToken, hash_refresh_token(refresh_token))
            if row is not None:
                ids.add(row.session_id)
        for session_id in ids:
            session = await db_session.get(LoginSession, session_id)
            if session is None or str(session.member_id) != principal.subject:
                continue
            if session.revoked_at is None:
                _revoke(session, now, reason="logout")
                ended.append(session)
    for session in ended:
        await announce_revocation(ctx, session, reason="logout")


async def set_role(*, db_session: AsyncSession, member_id: uuid.UUID, role: Role) -> Member:
    member = await get_member(db_session=db_session, member_id=member_id)
    member.role = role.value
    return member


async def find_member(*, db_session: AsyncSession, email: str) -> Member:
    member = await db_session.scalar(select(Member).where(Member.email == email.lower()))
    if member is None:
        raise NotFound(f"no member with email {email}")
    return member


def _revoke(session: LoginSession, now: Any, *, reason: str) -> None:
    session.revoked_at = now
    session.revoked_reason = reason


async def announce_revocation(ctx: AccountsContext, session: LoginSession, *, reason: str) -> None:
    # Tokens of the session stay refused until the last one it could have minted expires.
    until = ctx.clock.now() + timedelta(seconds=ctx.settings.access_token_ttl_s + 60)
    await _emit(
        ctx,
        "auth.session.revoked",
        subject=str(session.member_id),
        data={"session_id": str(session.id), "reason": reason, "until": until.isoformat()},
    )


async def _emit(
    ctx: AccountsContext, type_: str, *, subject: str | None, data: dict[str, Any]
) -> None:
    await ctx.events.emit(source=SOURCE, type=type_, subject=subject, data=data)


def _email_hash(email: str) -> str:
    # Detectors correlate attempts by account without the stream carrying raw addresses.
    return hashlib.sha256(email.encode()).hexdigest()[:16]
