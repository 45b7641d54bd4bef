"""Typo-tolerant search over titles, cast and genres.

The index lives in memory and is rebuilt when the catalog changes. Every catalog write bumps
a revision counter in the database; each process reads it (one primary-key lookup) before
answering, so a write on one replica shows up in every replica's next search without any
messaging, however writes interleave.
Scoring uses rapidfuzz's WRatio, which tolerates typos, word order and partial names;
a match on the title outranks one on a cast member, which outranks a genre.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal

from rapidfuzz import fuzz, process, utils
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from reelscale.catalog.models import Credit, Revision, Title

Field = Literal["title", "cast", "genre"]
WEIGHTS: dict[Field, float] = {"title": 1.0, "cast": 0.9, "genre": 0.8}
CUTOFF = 70.0


@dataclass(frozen=True)
class Match:
    title_id: Any
    score: float
    field: Field
    text: str


class SearchIndex:
    def __init__(self) -> None:
        self._fingerprint: int | None = None
        self._built = False
        self._choices: list[str] = []
        self._owners: list[tuple[Any, Field, str]] = []
        self._lock = asyncio.Lock()

    async def refresh(self, db_session: AsyncSession) -> None:
        """Rebuild if the titles changed since the last build."""
        fingerprint = await db_session.scalar(select(Revision.value).where(Revision.id == 1))
        if self._built and fingerprint == self._fingerprint:
            return
        async with self._lock:
            if self._built and fingerprint == self._fingerprint:
                return
            rows = await db_session.scalars(
                select(Title).options(
                    selectinload(Title.genres),
                    selectinload(Title.credits).joinedload(Credit.person),
                )
            )
            choices: list[str] = []
            owners: list[tuple[Any, Field, str]] = []
            for title in rows:
                entries: list[tuple[Field, str]] = [("title", title.name)]
                entries += [("cast", c.person.name) for c in title.credits]
                entries += [("genre", g.name) for g in title.genres]
                for field, text in entries:
                    choices.append(utils.default_process(text))
                    owners.append((title.id, field, text))
            self._choices, self._owners, self._fingerprint = choices, owners, fingerprint
            self._built = True

    def query(self, text: str, *, limit: int = 500) -> list[Match]:
        """The best match per title, best titles first."""
        needle = utils.default_process(text)
        if len(needle) < 2 or not self._choices:
            return []
        hits = process.extract(
            needle,
            self._choices,
            scorer=fuzz.WRatio,
            processor=None,
            score_cutoff=CUTOFF,
            limit=None,
        )
        best: dict[Any, Match] = {}
        for _choice, score, index in hits:
            title_id, field, original = self._owners[index]
            weighted = float(score) * WEIGHTS[field]
            current = best.get(title_id)
            if current is None or weighted > current.score:
                best[title_id] = Match(title_id, round(weighted, 2), field, original)
        ranked = sorted(best.values(), key=lambda m: (-m.score, m.text))
        return ranked[:limit]
