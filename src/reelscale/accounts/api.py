"""Accounts HTTP routes: sign-up and sign-in, tokens, profiles, admin."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request, Response, status

from reelscale.accounts import profiles, service
from reelscale.accounts.context import AccountsContext
from reelscale.accounts.schemas import (
    KeyRotationOut,
    LoginIn,
    LogoutIn,
    MemberOut,
    PicksIn,
    PicksOut,
    ProfileIn,
    ProfileOut,
    ProfileUpdate,
    RefreshIn,
    RoleIn,
    SelectProfileIn,
    SignupIn,
    TokenOut,
)
from reelscale.core.auth import authenticated, requires
from reelscale.core.db import Database
from reelscale.core.identity import Principal, Scope
from reelscale.core.problems import STANDARD_RESPONSES

router = APIRouter()

PROBLEMS = STANDARD_RESPONSES


def _ctx(request: Request) -> AccountsContext:
    ctx: AccountsContext = request.app.state.accounts.ctx
    return ctx


def _db(request: Request) -> Database:
    db: Database = request.app.state.platform.db
    return db


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


# ------------------------------------------------------------------------ sign-in
@router.post(
    "/v1/auth/signup",
    status_code=status.HTTP_201_CREATED,
    response_model=MemberOut,
    tags=["auth"],
    responses=PROBLEMS,
)
async def signup(
    data: SignupIn, ctx: AccountsContext = Depends(_ctx), db: Database = Depends(_db)
) -> MemberOut:
    """Create a member account."""
    return MemberOut.model_validate(await service.signup(db=db, ctx=ctx, data=data))


@router.post("/v1/auth/login", response_model=TokenOut, tags=["auth"], responses=PROBLEMS)
async def login(
    data: LoginIn,
    request: Request,
    ctx: AccountsContext = Depends(_ctx),
    db: Database = Depends(_db),
) -> TokenOut:
    """Exchange email and password for an access token (15 min) and a refresh token."""
    return await service.login(db=db, ctx=ctx, data=data, client_address=_client_address(request))


@router.post("/v1/auth/refresh", response_model=TokenOut, tags=["auth"], responses=PROBLEMS)
async def refresh(
    data: RefreshIn,
    request: Request,
    ctx: AccountsContext = Depends(_ctx),
    db: Database = Depends(_db),
) -> TokenOut:
    """Rotate a refresh token. Reusing a spent one revokes the whole session."""
    return await service.refresh(
        db=db, ctx=ctx, refresh_token=data.refresh_token, client_address=_client_address(request)
    )


@router.post(
    "/v1/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["auth"],
    responses=PROBLEMS,
)
async def logout(
    data: LogoutIn | None = None,
    principal: Principal = Depends(authenticated),
    ctx: AccountsContext = Depends(_ctx),
    db: Database = Depends(_db),
) -> Response:
    """End the session: its refresh tokens stop working and its access tokens are refused."""
    await service.logout(
        db=db, ctx=ctx, principal=principal, refresh_token=data.refresh_token if data else None
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/.well-known/jwks.json", tags=["auth"])
async def jwks(ctx: AccountsContext = Depends(_ctx)) -> dict[str, Any]:
    """Public keys that verify access tokens, current and recently rotated."""
    return ctx.keys.jwks()


@router.get("/v1/me", response_model=MemberOut, tags=["members"], responses=PROBLEMS)
async def me(
    principal: Principal = Depends(requires(Scope.ACCOUNT_READ)), db: Database = Depends(_db)
) -> MemberOut:
    """The signed-in member."""
    async with db.session() as db_session:
        member = await service.get_member(
            db_session=db_session, member_id=uuid.UUID(principal.subject)
        )
        return MemberOut.model_validate(member)


# ------------------------------------------------------------------------ profiles
@router.get("/v1/profiles", response_model=list[ProfileOut], tags=["profiles"], responses=PROBLEMS)
async def list_profiles(
    principal: Principal = Depends(requires(Scope.PROFILES_READ)), db: Database = Depends(_db)
) -> list[ProfileOut]:
    """The member's profiles."""
    async with db.session() as db_session:
        rows = await profiles.list_profiles(
            db_session=db_session, member_id=uuid.UUID(principal.subject)
        )
        return [profiles.to_out(row) for row in rows]


@router.post(
    "/v1/profiles",
    status_code=status.HTTP_201_CREATED,
    response_model=ProfileOut,
    tags=["profiles"],
    responses=PROBLEMS,
)
async def create_profile(
    data: ProfileIn,
    principal: Principal = Depends(requires(Scope.PROFILES_WRITE)),
    ctx: AccountsContext = Depends(_ctx),
    db: Database = Depends(_db),
) -> ProfileOut:
    """Add a profile (at most five). Kids profiles get a maturity ceiling."""
    profile = await profiles.add_profile(
        db=db, ctx=ctx, member_id=uuid.UUID(principal.subject), data=data
    )
    return profiles.to_out(profile)


@router.get(
    "/v1/profiles/{profile_id}", response_model=ProfileOut, tags=["profiles"], responses=PROBLEMS
)
async def get_profile(
    profile_id: uuid.UUID,
    principal: Principal = Depends(requires(Scope.PROFILES_READ)),
    db: Database = Depends(_db),
) -> ProfileOut:
    async with db.session() as db_session:
        profile = await profiles.get_profile(
            db_session=db_session, member_id=uuid.UUID(principal.subject), profile_id=profile_id
        )
        return profiles.to_out(profile)


@router.patch(
    "/v1/profiles/{profile_id}", response_model=ProfileOut, tags=["profiles"], responses=PROBLEMS
)
async def update_profile(
    profile_id: uuid.UUID,
    data: ProfileUpdate,
    principal: Principal = Depends(requires(Scope.PROFILES_WRITE)),
    ctx: AccountsContext = Depends(_ctx),
    db: Database = Depends(_db),
) -> ProfileOut:
    """Change a profile. Setting, changing or removing its PIN needs the account password."""
    profile = await profiles.change_profile(
        db=db, ctx=ctx, principal=principal, profile_id=profile_id, data=data
    )
    return profiles.to_out(profile)


@router.delete(
    "/v1/profiles/{profile_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["profiles"],
    responses=PROBLEMS,
)
async def delete_profile(
    profile_id: uuid.UUID,
    principal: Principal = Depends(requires(Scope.PROFILES_WRITE)),
    ctx: AccountsContext = Depends(_ctx),
    db: Database = Depends(_db),
) -> Response:
    """Delete a profile; devices switched into it must sign in again."""
    async with db.transaction() as db_session:
        ended = await profiles.delete_profile(
            db_session=db_session,
            member_id=uuid.UUID(principal.subject),
            profile_id=profile_id,
            now=ctx.clock.now(),
        )
    for session in ended:
        await service.announce_revocation(ctx, session, reason="profile_deleted")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/v1/profiles/{profile_id}/select",
    response_model=TokenOut,
    tags=["profiles"],
    responses=PROBLEMS,
)
async def select_profile(
    profile_id: uuid.UUID,
    data: SelectProfileIn | None = None,
    principal: Principal = Depends(requires(Scope.PROFILES_READ)),
    ctx: AccountsContext = Depends(_ctx),
    db: Database = Depends(_db),
) -> TokenOut:
    """Switch into a profile; returns an access token bound to it.

    A locked profile needs its PIN; leaving a kids profile for an unlocked one needs the
    account password."""
    return await profiles.select_profile(
        db=db,
        ctx=ctx,
        principal=principal,
        profile_id=profile_id,
        pin=data.pin if data else None,
        password=data.password if data else None,
    )


@router.get(
    "/v1/profiles/{profile_id}/picks",
    response_model=PicksOut,
    tags=["profiles"],
    responses=PROBLEMS,
)
async def get_picks(
    profile_id: uuid.UUID,
    principal: Principal = Depends(requires(Scope.PROFILES_READ)),
    db: Database = Depends(_db),
) -> PicksOut:
    """The profile's onboarding picks: genres and titles it likes, most liked first."""
    async with db.session() as db_session:
        return await profiles.get_picks(
            db_session=db_session, member_id=uuid.UUID(principal.subject), profile_id=profile_id
        )


@router.put(
    "/v1/profiles/{profile_id}/picks",
    response_model=PicksOut,
    tags=["profiles"],
    responses=PROBLEMS,
)
async def set_picks(
    profile_id: uuid.UUID,
    data: PicksIn,
    principal: Principal = Depends(requires(Scope.PROFILES_READ)),
    ctx: AccountsContext = Depends(_ctx),
    db: Database = Depends(_db),
) -> PicksOut:
    """Replace the profile's onboarding picks (at most 10 genre slugs and 20 title ids).

    Recommendations use them at once. A profile may set its own picks (a kids profile too);
    setting another profile's needs profiles:write."""
    return await profiles.set_picks(
        db=db, ctx=ctx, principal=principal, profile_id=profile_id, data=data
    )


# ------------------------------------------------------------------------ admin
@router.put(
    "/v1/admin/members/{member_id}/role",
    response_model=MemberOut,
    tags=["admin"],
    responses=PROBLEMS,
)
async def set_role(
    member_id: uuid.UUID,
    data: RoleIn,
    _: Principal = Depends(requires(Scope.MEMBERS_ADMIN)),
    db: Database = Depends(_db),
) -> MemberOut:
    """Grant a role; it takes effect at the member's next token refresh."""
    async with db.transaction() as db_session:
        member = await service.set_role(db_session=db_session, member_id=member_id, role=data.role)
        return MemberOut.model_validate(member)


@router.post(
    "/v1/admin/keys/rotate", response_model=KeyRotationOut, tags=["admin"], responses=PROBLEMS
)
async def rotate_keys(
    request: Request, _: Principal = Depends(requires(Scope.KEYS_ADMIN))
) -> KeyRotationOut:
    """Publish a new signing key; it signs once verifiers have had time to fetch it.

    Tokens signed by earlier keys stay valid until they expire."""
    kid, signs_from = await request.app.state.accounts.rotate_keys()
    return KeyRotationOut(kid=kid, signs_from=signs_from)
