"""The resources one process shares among the services it runs."""

from __future__ import annotations

from dataclasses import dataclass, field

from reelscale.core.clock import Clock
from reelscale.core.db import Database
from reelscale.core.events import EventPublisher
from reelscale.core.identity import TokenVerifier
from reelscale.core.lifecycle import Supervisor
from reelscale.core.metrics import Metrics
from reelscale.core.settings import Settings


@dataclass
class Platform:
    settings: Settings
    roles: frozenset[str]
    clock: Clock
    metrics: Metrics
    db: Database
    events: EventPublisher
    verifier: TokenVerifier
    supervisor: Supervisor = field(default_factory=Supervisor)
