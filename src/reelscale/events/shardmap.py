"""Which shard a partition key goes to, and how shards are added without breaking order.

Every shard owns a contiguous range of a 64-bit hash space (Kinesis's hash key ranges).
A key goes to the open shard whose range holds blake2b(key): a stable hash, the same in
every process and every release, unlike Python's salted `hash()`.

Resharding opens a new *epoch*: the open shards close (they take no more writes) and new
shards with fresh ids split the hash space evenly. A new shard's *parents* are the closed
shards whose ranges overlap its own, so a key's records before the reshard sit in one
parent and those after it in one child. Readers finish every parent (read and checkpoint
to its end) before they read the child, which keeps order per key across the change.
Closed shards stay readable until retention trims them, then count as finished.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
from dataclasses import dataclass

from reelscale.core.errors import NotFound

HASH_SPACE = 1 << 64


def key_hash(partition_key: str) -> int:
    """A stable 64-bit hash of a partition key."""
    digest = hashlib.blake2b(partition_key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@dataclass(frozen=True, slots=True)
class Shard:
    id: int
    epoch: int
    hash_start: int  # inclusive
    hash_end: int  # exclusive
    parents: tuple[int, ...] = ()

    def overlaps(self, other: Shard) -> bool:
        return self.hash_start < other.hash_end and other.hash_start < self.hash_end


@dataclass(frozen=True)
class ShardMap:
    """Every shard a stream has had; the ones of the newest epoch are open."""

    shards: tuple[Shard, ...]

    @classmethod
    def initial(cls, count: int) -> ShardMap:
        return cls(_split(count, epoch=0, first_id=0, previous=()))

    @property
    def epoch(self) -> int:
        return self.shards[-1].epoch

    @property
    def open_shards(self) -> tuple[Shard, ...]:
        epoch = self.epoch
        return tuple(s for s in self.shards if s.epoch == epoch)

    @property
    def closed_shards(self) -> tuple[Shard, ...]:
        epoch = self.epoch
        return tuple(s for s in self.shards if s.epoch != epoch)

    def get(self, shard_id: int) -> Shard:
        for shard in self.shards:
            if shard.id == shard_id:
                return shard
        raise NotFound(f"no shard {shard_id}")

    def is_open(self, shard_id: int) -> bool:
        return self.get(shard_id).epoch == self.epoch

    def router(self) -> ShardRouter:
        """The router for this map's open shards (one per map, so its cache is reused)."""
        return self._router

    @functools.cached_property
    def _router(self) -> ShardRouter:
        return ShardRouter(self.open_shards)

    def reshard(self, count: int) -> ShardMap:
        """A new epoch of `count` shards; the current open shards become their parents."""
        first_id = max(s.id for s in self.shards) + 1
        added = _split(count, epoch=self.epoch + 1, first_id=first_id, previous=self.open_shards)
        return ShardMap(self.shards + added)

    @property
    def epoch_sizes(self) -> list[int]:
        """The shard count of every epoch: all it takes to rebuild the map."""
        sizes = [0] * (self.epoch + 1)
        for shard in self.shards:
            sizes[shard.epoch] += 1
        return sizes

    @classmethod
    def from_epoch_sizes(cls, sizes: list[int]) -> ShardMap:
        """Rebuild a map: ids, ranges and parents all follow from the epochs' sizes."""
        shard_map = cls.initial(sizes[0])
        for size in sizes[1:]:
            shard_map = shard_map.reshard(size)
        return shard_map


class ShardRouter:
    """Maps partition keys to open shards; hot, so it caches the answer per key."""

    _CACHE_LIMIT = 65536

    def __init__(self, open_shards: tuple[Shard, ...]) -> None:
        self._starts = [s.hash_start for s in open_shards]
        self._ids = [s.id for s in open_shards]
        self._cache: dict[str, int] = {}

    def shard_for(self, partition_key: str) -> int:
        shard = self._cache.get(partition_key)
        if shard is None:
            index = bisect.bisect_right(self._starts, key_hash(partition_key)) - 1
            shard = self._ids[index]
            if len(self._cache) >= self._CACHE_LIMIT:
                self._cache.clear()  # bounded without LRU bookkeeping on the hot path
            self._cache[partition_key] = shard
        return shard


def _split(
    count: int, *, epoch: int, first_id: int, previous: tuple[Shard, ...]
) -> tuple[Shard, ...]:
    shards = []
    for index in range(count):
        start = HASH_SPACE * index // count
        end = HASH_SPACE * (index + 1) // count
        probe = Shard(first_id + index, epoch, start, end)
        parents = tuple(p.id for p in previous if p.overlaps(probe))
        shards.append(Shard(first_id + index, epoch, start, end, parents))
    return tuple(shards)
