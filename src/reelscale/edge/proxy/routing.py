"""Path prefix to pool: the longest matching prefix wins, `default` catches the rest.

A prefix matches itself and what lies below it (`/v1/catalog` matches `/v1/catalog` and
`/v1/catalog/titles`, never `/v1/catalogue`); a prefix ending in `/` matches only what lies
below it (`/media/` matches `/media/s/...`). Prefixes end on segment boundaries, so the
routes are kept as a tree of path segments and a path is walked segment by segment: a few
dict lookups, whatever the number of routes.
"""

from __future__ import annotations

from collections.abc import Iterable


class _Node:
    __slots__ = ("below", "children", "here")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.here: str | None = None  # pool for this path and anything below it
        self.below: str | None = None  # pool for anything strictly below it


class Router:
    """Chooses a pool name for a (decoded) request path."""

    def __init__(self, routes: Iterable[tuple[str, str]], *, default: str = "default") -> None:
        self.default = default
        self._root = _Node()
        # The most segments any prefix has: a path is split no further than that (the rest
        # stays one piece, and no node lies that deep to match it).
        self._depth = 0
        for prefix, pool in routes:
            trailing = prefix.endswith("/")
            node = self._root
            segments = prefix.strip("/").split("/") if prefix.strip("/") else []
            self._depth = max(self._depth, len(segments))
            for segment in segments:
                node = node.children.setdefault(segment, _Node())
            if trailing:
                node.below = pool
            else:
                node.here = pool

    def pool_for(self, path: str) -> str:
        segments = path[1:].split("/", self._depth)
        last = len(segments) - 1
        node = self._root
        best = node.below if node.below is not None and path.startswith("/") else self.default
        for index, segment in enumerate(segments):
            child = node.children.get(segment)
            if child is None:
                break
            node = child
            if node.here is not None:
                best = node.here
            if node.below is not None and index < last:
                best = node.below
        return best
