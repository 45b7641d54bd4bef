"""Throttling of failed logins and PIN attempts.

Rules, per OWASP ASVS 2.2.1 and the OWASP "device cookie" pattern:

- An account takes at most `login_failures_per_account_hour` (<= 100) failures in any
  rolling hour, and after `login_backoff_after` failures each further attempt must wait an
  exponentially growing delay, capped at `login_backoff_max_s`. Nothing locks forever: the
  delay is capped and failures age out of the hour.
- A client address takes at most `login_failures_per_address_hour` failures an hour
  across all accounts, which stops one host spraying many accounts.
- A device that has signed in to the account before holds a signed device token. Its
  attempts count against the device, not the account, so an attacker hammering the account
  elsewhere cannot lock the real member out of a device they already use.

Each attempt is reserved (recorded as a failure) inside one serialised transaction before
the password is checked, and forgiven on success. So concurrent guesses cannot slip past
the limit between a check and a write.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from reelscale.accounts.models import FailedAttempt
from reelscale.core.clock import Clock
from reelscale.core.errors import TooManyRequests
from reelscale.core.settings import Settings

HOUR = timedelta(hours=1)
DEVICE_FAILURES_PER_HOUR = 10


@dataclass(frozen=True)
class Reservation:
    attempt_ids: tuple[int, ...]
    account_key: str
    trusted_device: bool


class LoginThrottle:
    def __init__(self, *, settings: Settings, clock: Clock, secret: bytes) -> None:
        self.settings = settings
        self.clock = clock
        self._device_secret = hashlib.sha256(b"device-token:" + secret).digest()

    # ------------------------------------------------------------------ device tokens
    def device_token(self, member_id: uuid.UUID) -> str:
        device = uuid.uuid4().hex
        return f"{device}.{member_id.hex}.{self._sign(device, member_id.hex)}"

    def trusted_device(self, token: str | None, member_id: uuid.UUID | None) -> str | None:
        """The device id if `token` was issued to this member's device, else None."""
        if not token or member_id is None or token.count(".") != 2 or len(token) > 200:
            return None
        device, member_hex, signature = token.split(".")
        if member_hex != member_id.hex:
            return None
        if not hmac.compare_digest(signature, self._sign(device, member_hex)):
            return None
        return device

    def _sign(self, device: str, member_hex: str) -> str:
        return hmac.new(
            self._device_secret, f"{device}.{member_hex}".encode(), "sha256"
        ).hexdigest()

    # ------------------------------------------------------------------ logins
    async def reserve_login(
        self,
        *,
        db_session: AsyncSession,
        email: str,
        client_address: str,
        device_id: str | None,
    ) -> Reservation:
        """Check every limit and record this attempt as a failure until it succeeds."""
        now = self.clock.now()
        account_key = f"acct:{email}"
        address_key = f"addr:{client_address}"
        await _serialise(db_session, account_key, address_key)

        times = await _failures(db_session, address_key, now - HOUR)
        if len(times) >= self.settings.login_failures_per_address_hour:
            raise _too_many("too many failed sign-ins from this address", times[0] + HOUR - now)

        if device_id is not None:
            primary_key = f"dev:{device_id}"
            limit = DEVICE_FAILURES_PER_HOUR
        else:
            primary_key = account_key
            limit = self.settings.login_failures_per_account_hour
        times = await _failures(db_session, primary_key, now - HOUR)
        if len(times) >= limit:
            raise _too_many("too many failed sign-ins for this account", times[0] + HOUR - now)
        wait = self._backoff(len(times)) - (now - times[-1]).total_seconds() if times else 0
        if wait > 0:
            raise _too_many("sign-in attempts are coming too fast; wait and retry", wait)

        keys = [address_key, primary_key] + ([account_key] if device_id else [])
        rows = [FailedAttempt(key=key, at=now) for key in keys]
        db_session.add_all(rows)
        await db_session.flush()
        return Reservation(tuple(row.id for row in rows), account_key, device_id is not None)

    async def forgive(self, *, db_session: AsyncSession, reservation: Reservation) -> None:
        """A success: drop this attempt and reset the account's run of failures."""
        await db_session.execute(
            delete(FailedAttempt).where(FailedAttempt.id.in_(reservation.attempt_ids))
        )
        if not reservation.trusted_device:
            await db_session.execute(
                delete(FailedAttempt).where(FailedAttempt.key == reservation.account_key)
            )

    def _backoff(self, failures: int) -> float:
        over = failures - self.settings.login_backoff_after
        if over < 0:
            return 0.0
        return float(min(2**over, self.settings.login_backoff_max_s))

    # ------------------------------------------------------------------ PINs
    async def reserve_secret(self, *, db_session: AsyncSession, key: str) -> Reservation:
        """Reserve one guess at a PIN or re-entered password, `key` naming what is guessed."""
        now = self.clock.now()
        await _serialise(db_session, key)
        window = timedelta(seconds=self.settings.pin_window_s)
        times = await _failures(db_session, key, now - window)
        if len(times) >= self.settings.pin_failures_per_window:
            raise _too_many("too many wrong guesses; wait and retry", times[0] + window - now)
        row = FailedAttempt(key=key, at=now)
        db_session.add(row)
        await db_session.flush()
        return Reservation((row.id,), key, False)

    # ------------------------------------------------------------------ housekeeping
    async def prune(self, *, db_session: AsyncSession) -> int:
        """Delete attempts older than every window; returns how many went."""
        oldest_kept = self.clock.now() - max(HOUR, timedelta(seconds=self.settings.pin_window_s))
        result = await db_session.execute(
            delete(FailedAttempt).where(FailedAttempt.at < oldest_kept)
        )
        return int(getattr(result, "rowcount", 0) or 0)


async def _serialise(db_session: AsyncSession, *keys: str) -> None:
    # SQLite write transactions already run one at a time (BEGIN IMMEDIATE); PostgreSQL
    # needs a lock per key so that check-then-reserve is atomic. Sorted: no deadlocks.
    if db_session.get_bind().dialect.name == "postgresql":
        for key in sorted(set(keys)):
            await db_session.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key}
            )


async def _failures(db_session: AsyncSession, key: str, since: datetime) -> Sequence[datetime]:
    rows = await db_session.scalars(
        select(FailedAttempt.at)
        .where(FailedAttempt.key == key, FailedAttempt.at > since)
        .order_by(FailedAttempt.at)
    )
    return rows.all()


def _too_many(detail: str, wait: timedelta | float) -> TooManyRequests:
    seconds = wait.total_seconds() if isinstance(wait, timedelta) else wait
    return TooManyRequests(detail, retry_after=max(1.0, seconds))


__all__ = ["LoginThrottle", "Reservation"]
