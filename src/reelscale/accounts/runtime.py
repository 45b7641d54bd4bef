"""The accounts service as a lifecycle service: keys loaded on start, rotated on schedule."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from reelscale.accounts.context import AccountsContext
from reelscale.accounts.keys import KeyRing
from reelscale.accounts.models import Base
from reelscale.accounts.passwords import PasswordHasher
from reelscale.accounts.throttle import LoginThrottle
from reelscale.core.lifecycle import Service
from reelscale.core.migrations import MigrationSet
from reelscale.core.platform import Platform

log = logging.getLogger("reelscale.accounts")

MIGRATIONS = MigrationSet("accounts", Base.metadata, Path(__file__).with_name("migrations"))
KEY_RELOAD_S = 15.0  # also how late a retired key's grace may start
PRUNE_S = 300.0


class AccountsRuntime(Service):
    name = "accounts"

    def __init__(self, platform: Platform) -> None:
        super().__init__()
        self.platform = platform
        settings = platform.settings
        secret = settings.resolved_secret_key()
        self.ctx = AccountsContext(
            settings=settings,
            clock=platform.clock,
            hasher=PasswordHasher(settings),
            keys=KeyRing(
                secret=secret, clock=platform.clock, access_ttl_s=settings.access_token_ttl_s
            ),
            throttle=LoginThrottle(settings=settings, clock=platform.clock, secret=secret),
            events=platform.events,
        )
        self.every("keys", KEY_RELOAD_S, self.refresh_keys, metrics=platform.metrics)
        self.every("throttle-prune", PRUNE_S, self.prune_attempts, metrics=platform.metrics)

    async def on_start(self) -> None:
        async with self.platform.db.transaction() as db_session:
            await self.ctx.keys.load(db_session=db_session)

    async def refresh_keys(self) -> None:
        """Pick up keys rotated by other processes, and rotate when the key is due."""
        async with self.platform.db.transaction() as db_session:
            await self.ctx.keys.load(db_session=db_session)
            if self.ctx.keys.newest_key_age_s >= self.platform.settings.signing_key_rotation_s:
                kid, signs_from = await self.ctx.keys.rotate(db_session=db_session)
                log.info("signing key rotated", extra={"kid": kid, "signs_from": signs_from})

    async def rotate_keys(self) -> tuple[str, datetime]:
        async with self.platform.db.transaction() as db_session:
            return await self.ctx.keys.rotate(db_session=db_session)

    async def prune_attempts(self) -> None:
        async with self.platform.db.transaction() as db_session:
            await self.ctx.throttle.prune(db_session=db_session)
