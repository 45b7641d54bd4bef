"""The writer that `bench.crash` kills: puts batches forever and reports every ack.

    python -m reelscale.events.crash_writer DIRECTORY SEED

After each put_batch returns (so after its fsync), it writes one line per record to
stdout, "<shard> <sequence> <event id>", and flushes. A line is written only after the
ack, so anything the parent reads was acknowledged; a record acked but not yet reported
when the kill lands is simply not counted.
"""

from __future__ import annotations

import asyncio
import random
import sys
from datetime import UTC, datetime
from pathlib import Path

from reelscale.core.events import CloudEvent
from reelscale.events.embedded import EmbeddedEventStore
from reelscale.events.records import PutEntry

STREAM = "crash"
SHARDS = 4
SEGMENT_BYTES = 256 * 1024  # small, so kills also land around segment rolls
MAX_BYTES = 64 * 1024 * 1024  # and retention deletes old segments between them
PRODUCERS = 4


async def write_forever(directory: Path, seed: int) -> None:
    store = EmbeddedEventStore(directory, segment_bytes=SEGMENT_BYTES)
    await store.start()
    await store.create_stream(STREAM, shards=SHARDS, max_bytes=MAX_BYTES)
    out = sys.stdout.buffer
    out.write(b"ready\n")
    out.flush()
    rng = random.Random(seed)  # noqa: S311 - test data, seeded to be repeatable
    now = datetime.now(UTC)

    async def produce(producer: int) -> None:
        n = 0
        while True:
            size = rng.choice((1, 7, 50, 400))
            batch = []
            for _ in range(size):
                n += 1
                event = CloudEvent(
                    id=f"{seed}-{producer}-{n}",
                    source="bench/crash",
                    type="bench.crash",
                    time=now,
                    data={"n": n, "pad": "x" * rng.randrange(0, 600)},
                )
                batch.append(PutEntry(event, f"key-{rng.randrange(64)}"))
            records = await store.put_batch(STREAM, batch)
            out.write("".join(f"{r.shard} {r.sequence} {r.event.id}\n" for r in records).encode())
            out.flush()

    await asyncio.gather(*(produce(p) for p in range(PRODUCERS)))


def main() -> None:
    asyncio.run(write_forever(Path(sys.argv[1]), int(sys.argv[2])))


if __name__ == "__main__":
    main()
