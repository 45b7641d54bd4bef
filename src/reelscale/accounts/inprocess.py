"""The accounts client for callers in the same process: no network, same contract."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from reelscale.accounts.client import ProfileRow
from reelscale.accounts.models import PickedGenre, PickedTitle, Profile
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
        """Every profile's language and onboarding picks, in pick order (three queries, not
        one per profile: a build reads them all)."""
        genres: dict[uuid.UUID, list[str]] = {}
        titles: dict[uuid.UUID, list[uuid.UUID]] = {}
        async with self._runtime.platform.db.session() as db_session:
            languages = (await db_session.execute(select(Profile.id, Profile.language))).all()
            picked_genres = await db_session.execute(
                select(PickedGenre.profile_id, PickedGenre.slug).order_by(
                    PickedGenre.profile_id, PickedGenre.position
                )
            )
            for profile_id, slug in picked_genres:
                genres.setdefault(profile_id, []).append(slug)
            picked_titles = await db_session.execute(
                select(PickedTitle.profile_id, PickedTitle.title_id).order_by(
                    PickedTitle.profile_id, PickedTitle.position
                )
            )
            for profile_id, title_id in picked_titles:
                titles.setdefault(profile_id, []).append(title_id)
        return [
            ProfileRow(
                id=profile_id,
                language=language,
                picked_genres=genres.get(profile_id, []),
                picked_titles=titles.get(profile_id, []),
            )
            for profile_id, language in languages
        ]
