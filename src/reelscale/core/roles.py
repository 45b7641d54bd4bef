"""How a service plugs into a process: its lifecycle service, routes and migrations."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import APIRouter

from reelscale.core.lifecycle import Service
from reelscale.core.migrations import MigrationSet


@dataclass
class RoleMount:
    name: str
    service: Service | None = None
    routers: list[APIRouter] = field(default_factory=list)
    migrations: MigrationSet | None = None
