"""Making sure a stream exists without touching one that does.

`EventStore.create_stream` on an existing stream resets its retention to what is asked,
so the runtime never calls it on a stream that is there: it describes first and creates
only on NotFound. Functions can thus start before whatever writes to their streams.
"""

from __future__ import annotations

from reelscale.core.errors import Conflict, NotFound
from reelscale.events.store import EventStore

DEAD_LETTER_MAX_AGE_S = 14 * 86400.0  # SQS's longest retention, the usual DLQ choice


async def ensure_stream(
    store: EventStore, name: str, *, shards: int = 1, max_age_s: float | None = None
) -> None:
    """Create `name` if it does not exist; leave an existing one exactly as it is."""
    try:
        await store.describe_stream(name)
        return
    except NotFound:
        pass
    try:
        await store.create_stream(name, shards=shards, max_age_s=max_age_s)
    except Conflict:
        await store.describe_stream(name)  # created by someone else meanwhile: fine
