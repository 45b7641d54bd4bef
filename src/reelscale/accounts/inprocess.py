"""The accounts client for callers in the same process: no network, same contract."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from reelscale.accounts.client import ProfileRow
from reelscale.accounts.models import Profile
from reelscale.accounts.runtime import AccountsRuntime


class InProcessAccounts:
    def __init__(self, runtime: AccountsRuntime) -> None:
        self._runtime = runtime

    async def jwks(self) -> dict[str, Any]:
        return self._runtime.ctx.keys.jwks()

    async def aclose(self) -> None:
        return None


class InProcessProfiles:
    """Profiles as recommendations see them (no names, no PINs, no members)."""

    def __init__(self, runtime: AccountsRuntime) -> None:
        self._runtime = runtime

    async def recs_profiles(self) -> list[ProfileRow]:
        query = select(Profile.id, Profile.language)
        async with self._runtime.platform.db.session() as db_session:
            rows = await db_session.execute(query)
            return [ProfileRow(id=profile_id, language=language) for profile_id, language in rows]
