"""What accounts' service functions need besides a database session."""

from __future__ import annotations

from dataclasses import dataclass

from reelscale.accounts.keys import KeyRing
from reelscale.accounts.passwords import PasswordHasher
from reelscale.accounts.throttle import LoginThrottle
from reelscale.core.clock import Clock
from reelscale.core.events import EventPublisher
from reelscale.core.settings import Settings

SOURCE = "reelscale/accounts"


@dataclass(frozen=True)
class AccountsContext:
    settings: Settings
    clock: Clock
    hasher: PasswordHasher
    keys: KeyRing
    throttle: LoginThrottle
    events: EventPublisher
