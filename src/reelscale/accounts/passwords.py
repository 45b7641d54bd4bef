"""argon2id password and PIN hashing."""

from __future__ import annotations

import asyncio
import contextlib

from argon2 import PasswordHasher as _Argon2
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError

from reelscale.core.settings import Settings


class PasswordHasher:
    """Hashes off the event loop: argon2 is deliberately slow and memory-hungry."""

    def __init__(self, settings: Settings) -> None:
        self._argon2 = _Argon2(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
            type=Type.ID,
        )
        self._dummy: str | None = None

    def _dummy_hash(self) -> str:
        # Verified against when the email is unknown, so timing does not reveal which
        # addresses have accounts.
        if self._dummy is None:
            self._dummy = self._argon2.hash("reelscale-timing-equaliser")
        return self._dummy

    async def hash(self, secret: str) -> str:
        return await asyncio.to_thread(self._argon2.hash, secret)

    async def verify(self, hashed: str | None, secret: str) -> bool:
        return await asyncio.to_thread(self._verify, hashed, secret)

    def _verify(self, hashed: str | None, secret: str) -> bool:
        if hashed is None:
            with contextlib.suppress(VerificationError, InvalidHashError):
                self._argon2.verify(self._dummy_hash(), secret)
            return False
        try:
            return bool(self._argon2.verify(hashed, secret))
        except (VerificationError, InvalidHashError):
            return False
