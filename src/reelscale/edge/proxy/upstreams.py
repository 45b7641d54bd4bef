"""Where each pool's instances are: the discovery interface and its static implementation.

The proxy asks an `Upstreams` for the current membership once at start and again each time
`changes()` yields. `StaticUpstreams` serves a fixed list from settings and never changes;
a fleet registry will implement the same two methods, and nothing else in the proxy moves.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Origin:
    """One service instance, reached over plain HTTP/1.1."""

    host: str
    port: int

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return self.authority


Membership = Mapping[str, tuple[Origin, ...]]


class Upstreams(abc.ABC):
    """Pool name to its instances, now and as it changes."""

    @abc.abstractmethod
    def current(self) -> Membership:
        """Every pool's instances now; `default` is always present."""

    @abc.abstractmethod
    def changes(self) -> AsyncIterator[Membership]:
        """Yields the whole membership each time it changes (never, for a static list)."""


class StaticUpstreams(Upstreams):
    """A fixed membership, from `REELSCALE_EDGE_UPSTREAMS`."""

    def __init__(self, pools: Membership) -> None:
        if "default" not in pools:
            raise ValueError("upstreams need a 'default' pool for unrouted paths")
        empty = [name for name, origins in pools.items() if not origins]
        if empty:
            raise ValueError(f"upstream pool(s) without instances: {', '.join(sorted(empty))}")
        self._pools = {name: tuple(origins) for name, origins in pools.items()}

    def current(self) -> Membership:
        return self._pools

    async def changes(self) -> AsyncIterator[Membership]:
        await asyncio.Event().wait()  # a static list never changes
        yield self._pools  # pragma: no cover - unreachable; makes this an async generator
