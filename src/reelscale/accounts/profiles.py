"""Profiles: up to five per member, kids ceilings, PINs, onboarding picks, switching in."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from reelscale.accounts.context import SOURCE, AccountsContext
from reelscale.accounts.models import LoginSession, Member, PickedGenre, PickedTitle, Profile
from reelscale.accounts.schemas import (
    PicksIn,
    PicksOut,
    ProfileIn,
    ProfileOut,
    ProfileUpdate,
    TokenOut,
)
from reelscale.accounts.tokens import token_pair
from reelscale.core.db import Database
from reelscale.core.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from reelscale.core.identity import Principal, Scope
from reelscale.core.maturity import ADULT_LEVEL, KIDS_DEFAULT_LEVEL, KIDS_MAX_LEVEL

MAX_PROFILES = 5
PICKS_UPDATED = "profile.picks_updated"  # on the `platform` stream, keyed by profile


def to_out(profile: Profile) -> ProfileOut:
    return ProfileOut(
        id=profile.id,
        name=profile.name,
        is_kids=profile.is_kids,
        max_maturity=profile.max_maturity,
        has_pin=profile.pin_hash is not None,
        language=profile.language,
        avatar=profile.avatar,
        created_at=profile.created_at,
    )


async def list_profiles(*, db_session: AsyncSession, member_id: uuid.UUID) -> list[Profile]:
    rows = await db_session.scalars(
        select(Profile).where(Profile.member_id == member_id).order_by(Profile.created_at)
    )
    return list(rows.all())


async def get_profile(
    *, db_session: AsyncSession, member_id: uuid.UUID, profile_id: uuid.UUID
) -> Profile:
    profile = await db_session.get(Profile, profile_id)
    if profile is None or profile.member_id != member_id:
        raise NotFound("no such profile")
    return profile


async def create_profile(
    *,
    db_session: AsyncSession,
    ctx: AccountsContext,
    member_id: uuid.UUID,
    data: ProfileIn,
    pin_hash: str | None,
    profile_id: uuid.UUID | None = None,
) -> Profile:
    """Add a profile; the sixth is a Conflict, even when several are created at once.

    The PIN is hashed by the caller, before the transaction: argon2 is slow, and a write
    transaction on SQLite holds the one writer connection."""
    claimed = await db_session.execute(
        update(Member)
        .where(Member.id == member_id, Member.profile_count < MAX_PROFILES)
        .values(profile_count=Member.profile_count + 1)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        if await db_session.get(Member, member_id) is None:
            raise NotFound("no such member")
        raise Conflict(f"a member has at most {MAX_PROFILES} profiles")
    profile = Profile(
        id=profile_id or uuid.uuid4(),
        member_id=member_id,
        name=data.name,
        is_kids=data.is_kids,
        max_maturity=_ceiling(data.is_kids, data.max_maturity),
        pin_hash=pin_hash,
        language=data.language,
        avatar=data.avatar,
        created_at=ctx.clock.now(),
    )
    db_session.add(profile)
    await _flush_unique_name(db_session)
    return profile


async def update_profile(
    *,
    db_session: AsyncSession,
    profile: Profile,
    data: ProfileUpdate,
    pin_hash: str | None,
) -> Profile:
    if data.name is not None:
        profile.name = data.name
    if data.max_maturity is not None:
        profile.max_maturity = _ceiling(profile.is_kids, data.max_maturity)
    if data.pin is not None:
        profile.pin_hash = pin_hash
    if data.remove_pin:
        profile.pin_hash = None
    if data.language is not None:
        profile.language = data.language
    if data.avatar is not None:
        profile.avatar = data.avatar
    await _flush_unique_name(db_session)
    return profile


async def delete_profile(
    *, db_session: AsyncSession, member_id: uuid.UUID, profile_id: uuid.UUID, now: datetime
) -> list[LoginSession]:
    """Delete a profile and end the sessions switched into it; returns those sessions.

    A device left on a deleted (say, kids) profile must sign in again rather than fall
    back to an account-wide token."""
    profile = await get_profile(db_session=db_session, member_id=member_id, profile_id=profile_id)
    bound = list(
        await db_session.scalars(
            select(LoginSession).where(
                LoginSession.profile_id == profile_id, LoginSession.revoked_at.is_(None)
            )
        )
    )
    for session in bound:
        session.revoked_at = now
        session.revoked_reason = "profile_deleted"
    await db_session.delete(profile)
    await db_session.execute(
        update(Member).where(Member.id == member_id).values(profile_count=Member.profile_count - 1)
    )
    return bound


async def add_profile(
    *, db: Database, ctx: AccountsContext, member_id: uuid.UUID, data: ProfileIn
) -> Profile:
    pin_hash = await ctx.hasher.hash(data.pin) if data.pin else None
    async with db.transaction() as db_session:
        return await create_profile(
            db_session=db_session, ctx=ctx, member_id=member_id, data=data, pin_hash=pin_hash
        )


async def change_profile(
    *,
    db: Database,
    ctx: AccountsContext,
    principal: Principal,
    profile_id: uuid.UUID,
    data: ProfileUpdate,
) -> Profile:
    """Update a profile. Setting, changing or removing a PIN needs the account password:
    a profile lock is a parental control, not something any profile may undo."""
    member_id = uuid.UUID(principal.subject)
    if data.pin is not None and data.remove_pin:
        raise BadRequest("give either a new pin or remove_pin, not both")
    pin_hash = None
    if data.pin is not None or data.remove_pin:
        if data.password is None:
            raise Forbidden(
                "changing a profile lock needs the account password", password_required=True
            )
        await _confirm_password(db=db, ctx=ctx, member_id=member_id, password=data.password)
        pin_hash = await ctx.hasher.hash(data.pin) if data.pin else None
    async with db.transaction() as db_session:
        profile = await get_profile(
            db_session=db_session, member_id=member_id, profile_id=profile_id
        )
        old_language = profile.language
        await update_profile(db_session=db_session, profile=profile, data=data, pin_hash=pin_hash)
        relanguaged = profile.language != old_language
        genres, titles = await _picks_of(db_session, profile_id) if relanguaged else ([], [])
    if relanguaged:
        # A new profile's rows are popular titles in its language until it has watched
        # something: recommendations re-read its onboarding state, language included.
        await _announce_picks(
            ctx, profile_id, language=profile.language, genres=genres, titles=titles
        )
    return profile


async def select_profile(
    *,
    db: Database,
    ctx: AccountsContext,
    principal: Principal,
    profile_id: uuid.UUID,
    pin: str | None,
    password: str | None,
) -> TokenOut:
    """Switch the session into a profile and mint a token bound to it.

    A locked profile needs its PIN. Leaving a kids profile for one that is not a kids
    profile needs that profile's PIN or, if it has none, the account password: otherwise a
    child could step out of their maturity ceiling with a tap."""
    if principal.session_id is None:
        raise Forbidden("only a signed-in session can switch profiles")
    member_id = uuid.UUID(principal.subject)
    async with db.session() as db_session:
        profile = await get_profile(
            db_session=db_session, member_id=member_id, profile_id=profile_id
        )
    leaving_kids = principal.is_kids and not profile.is_kids
    if profile.pin_hash is not None:
        if pin is None:
            raise Forbidden("this profile is locked with a PIN", pin_required=True)
        await _check_secret(
            db=db,
            ctx=ctx,
            key=f"pin:{profile_id.hex}",
            hashed=profile.pin_hash,
            secret=pin,
            subject=principal.subject,
            what="PIN",
        )
    elif leaving_kids:
        if password is None:
            raise Forbidden(
                "leaving a kids profile needs the account password", password_required=True
            )
        await _confirm_password(db=db, ctx=ctx, member_id=member_id, password=password)

    async with db.transaction() as db_session:
        session = await db_session.get(LoginSession, uuid.UUID(principal.session_id))
        member = await db_session.get(Member, member_id)
        profile_row = await db_session.get(Profile, profile_id)
        if session is None or session.revoked_at is not None or member is None:
            raise Unauthorized("this session has ended; sign in again")
        if profile_row is None:
            raise NotFound("no such profile")
        session.profile_id = profile_row.id
        tokens = token_pair(
            ctx, db_session, member=member, session=session, profile=profile_row, with_refresh=False
        )
    await ctx.events.emit(
        source=SOURCE,
        type="auth.profile.selected",
        subject=principal.subject,
        data={"profile_id": str(profile_id), "session_id": principal.session_id},
    )
    return tokens


async def get_picks(
    *, db_session: AsyncSession, member_id: uuid.UUID, profile_id: uuid.UUID
) -> PicksOut:
    await get_profile(db_session=db_session, member_id=member_id, profile_id=profile_id)
    genres, titles = await _picks_of(db_session, profile_id)
    return PicksOut(profile_id=profile_id, genres=genres, titles=titles)


async def set_picks(
    *,
    db: Database,
    ctx: AccountsContext,
    principal: Principal,
    profile_id: uuid.UUID,
    data: PicksIn,
) -> PicksOut:
    """Replace a profile's onboarding picks, then tell recommendations.

    Whoever manages the account's profiles (profiles:write) may set any of its profiles'
    picks; any profile may set its own, a kids profile included: picks only say what to
    show first among titles its ceiling already allows."""
    member_id = uuid.UUID(principal.subject)
    async with db.transaction() as db_session:
        # Locked, so two saves at once replace the picks one after the other (PostgreSQL;
        # SQLite's single writer already serialises them).
        profile = await db_session.scalar(
            select(Profile).where(Profile.id == profile_id).with_for_update()
        )
        if profile is None or profile.member_id != member_id:
            raise NotFound("no such profile")
        if Scope.PROFILES_WRITE not in principal.scopes and principal.profile_id != str(profile_id):
            raise Forbidden("this profile may change only its own picks")
        language = profile.language
        await db_session.execute(delete(PickedGenre).where(PickedGenre.profile_id == profile_id))
        await db_session.execute(delete(PickedTitle).where(PickedTitle.profile_id == profile_id))
        db_session.add_all(
            [
                PickedGenre(profile_id=profile_id, position=n, slug=g)
                for n, g in enumerate(data.genres)
            ]
            + [
                PickedTitle(profile_id=profile_id, position=n, title_id=t)
                for n, t in enumerate(data.titles)
            ]
        )
    # After the commit: recommendations fold the event in at once (the next home page
    # shows it), and a model build that starts later reads the same picks from the table.
    await _announce_picks(
        ctx, profile_id, language=language, genres=data.genres, titles=data.titles
    )
    return PicksOut(profile_id=profile_id, genres=data.genres, titles=data.titles)


async def _announce_picks(
    ctx: AccountsContext,
    profile_id: uuid.UUID,
    *,
    language: str,
    genres: list[str],
    titles: list[uuid.UUID],
) -> None:
    """`profile.picks_updated`: a profile's onboarding state (its picks and language)."""
    await ctx.events.emit(
        source=SOURCE,
        type=PICKS_UPDATED,
        subject=str(profile_id),
        key=str(profile_id),
        data={
            "profile_id": str(profile_id),
            "language": language,
            "genres": genres,
            "titles": [str(t) for t in titles],
        },
    )


async def _picks_of(
    db_session: AsyncSession, profile_id: uuid.UUID
) -> tuple[list[str], list[uuid.UUID]]:
    genres = await db_session.scalars(
        select(PickedGenre.slug)
        .where(PickedGenre.profile_id == profile_id)
        .order_by(PickedGenre.position)
    )
    titles = await db_session.scalars(
        select(PickedTitle.title_id)
        .where(PickedTitle.profile_id == profile_id)
        .order_by(PickedTitle.position)
    )
    return list(genres), list(titles)


async def _confirm_password(
    *, db: Database, ctx: AccountsContext, member_id: uuid.UUID, password: str
) -> None:
    async with db.session() as db_session:
        member = await db_session.get(Member, member_id)
    if member is None:
        raise Unauthorized("this account no longer exists")
    await _check_secret(
        db=db,
        ctx=ctx,
        key=f"pw:{member_id.hex}",
        hashed=member.password_hash,
        secret=password,
        subject=str(member_id),
        what="password",
    )


async def _check_secret(
    *,
    db: Database,
    ctx: AccountsContext,
    key: str,
    hashed: str,
    secret: str,
    subject: str,
    what: str,
) -> None:
    """Check a PIN or re-entered password under the guessing throttle."""
    async with db.transaction() as db_session:
        reservation = await ctx.throttle.reserve_secret(db_session=db_session, key=key)
    if not await ctx.hasher.verify(hashed, secret):
        await ctx.events.emit(
            source=SOURCE,
            type="auth.pin.failed" if what == "PIN" else "auth.password.failed",
            subject=subject,
            data={"key": key.split(":", 1)[0]},
        )
        raise Forbidden(f"wrong {what}", **{f"{what.lower()}_required": True})
    async with db.transaction() as db_session:
        await ctx.throttle.forgive(db_session=db_session, reservation=reservation)


def _ceiling(is_kids: bool, requested: int | None) -> int:
    if not is_kids:
        return ADULT_LEVEL if requested is None else requested
    if requested is None:
        return KIDS_DEFAULT_LEVEL
    if requested > KIDS_MAX_LEVEL:
        raise BadRequest(f"a kids profile's maturity ceiling is at most {KIDS_MAX_LEVEL}")
    return requested


async def _flush_unique_name(db_session: AsyncSession) -> None:
    try:
        await db_session.flush()
    except IntegrityError:
        raise Conflict("this member already has a profile with that name") from None
