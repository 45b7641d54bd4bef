"""Where a shard's checkpoint may go while lanes finish records out of order.

Records are dispatched in sequence order and finish in any order (each lane at its own
pace). The checkpoint is cumulative, so it may only move to the highest sequence below
which everything dispatched has finished: the lowest fully processed point.
"""

from __future__ import annotations

import hashlib
from collections import deque


def lane_for(partition_key: str, lanes: int) -> int:
    """The lane a key's records always go to (a stable hash, the same in every process)."""
    if lanes == 1:
        return 0
    digest = hashlib.blake2b(partition_key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % lanes


class ShardProgress:
    def __init__(self) -> None:
        self._order: deque[int] = deque()  # dispatched and not yet below the safe point
        self._finished: set[int] = set()
        self.highest: int | None = None  # the highest sequence dispatched so far
        self.safe: int | None = None  # everything dispatched up to here has finished

    def dispatch(self, sequence: int) -> None:
        if self.highest is not None and sequence <= self.highest:
            raise ValueError(f"sequence {sequence} dispatched after {self.highest}")
        self._order.append(sequence)
        self.highest = sequence

    def finish(self, sequence: int) -> None:
        self._finished.add(sequence)
        while self._order and self._order[0] in self._finished:
            done = self._order.popleft()
            self._finished.discard(done)
            self.safe = done

    def seen(self, sequence: int) -> bool:
        """Whether a record was dispatched already (a redelivery after a rewind)."""
        return self.highest is not None and sequence <= self.highest

    @property
    def outstanding(self) -> int:
        """Dispatched records the checkpoint cannot pass yet."""
        return len(self._order)
