"""Reading a function's dead letters back, and putting them onto their source stream.

Listing reads the dead-letter stream with a group that never checkpoints (`peek-<name>`),
so it always starts from the oldest letter kept (or after a given one). Replaying reads it
with the group `replay-<name>` and checkpoints after each batch it has put back: run twice,
it puts back only what came since. Each put carries an idempotency key made from the
letter's position, so a replay interrupted between its put and its checkpoint and run again
within the store's idempotency window does not put a letter back twice either.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

from reelscale.core.errors import NotFound
from reelscale.events.records import TRIM_HORIZON, PutEntry, Record, StartAt
from reelscale.events.store import EventStore
from reelscale.functions.deadletters import parse_letter
from reelscale.functions.schemas import DeadLetter, ReplayResult
from reelscale.functions.spec import FunctionSpec, derived_name

PEEK_GROUP_PREFIX = "peek-"
READ_BATCH = 500
READ_WAIT_S = 0.05  # letters are all stored already: a short wait finds the end


def peek_group(spec: FunctionSpec) -> str:
    return derived_name(PEEK_GROUP_PREFIX, spec.name)


async def _dead_letter_shards(store: EventStore, spec: FunctionSpec) -> list[int]:
    try:
        return [shard.id for shard in (await store.shard_map(spec.dead_letter_stream)).shards]
    except NotFound:
        return []  # nothing has failed yet (or the function keeps no dead letters)


async def read_letters(
    store: EventStore, spec: FunctionSpec, *, limit: int, after: int | None = None
) -> list[DeadLetter]:
    """Up to `limit` letters, oldest first, after letter sequence `after` if given."""
    start = StartAt.at_sequence(after + 1) if after is not None else TRIM_HORIZON
    letters: list[DeadLetter] = []
    for shard in await _dead_letter_shards(store, spec):
        reader = await store.open_reader(
            spec.dead_letter_stream, group=peek_group(spec), shard=shard, start=start
        )
        try:
            while len(letters) < limit:
                batch = await reader.read(
                    max_records=min(READ_BATCH, limit - len(letters)), wait_s=READ_WAIT_S
                )
                if not batch:
                    break
                letters += [letter for letter in map(parse_letter, batch) if letter is not None]
        finally:
            await reader.close()
    letters.sort(key=lambda letter: letter.letter_sequence)
    return letters[:limit]


async def replay_letters(
    store: EventStore, spec: FunctionSpec, *, limit: int | None = None
) -> ReplayResult:
    """Put letters not replayed before back onto their source stream, in order."""
    replayed = skipped = 0
    for shard in await _dead_letter_shards(store, spec):
        reader = await store.open_reader(
            spec.dead_letter_stream, group=spec.replay_group, shard=shard, start=TRIM_HORIZON
        )
        try:
            while limit is None or replayed + skipped < limit:
                want = READ_BATCH if limit is None else min(READ_BATCH, limit - replayed - skipped)
                batch = await reader.read(max_records=want, wait_s=READ_WAIT_S)
                if not batch:
                    break
                puts, passed_over = _replayable(spec, batch)
                for stream, entries in puts.items():
                    await store.put_batch(stream, entries)
                await reader.checkpoint(batch[-1].sequence)
                replayed += sum(len(entries) for entries in puts.values())
                skipped += passed_over
        finally:
            await reader.close()
    return ReplayResult(function=spec.name, replayed=replayed, skipped=skipped)


def _replayable(spec: FunctionSpec, batch: list[Record]) -> tuple[dict[str, list[PutEntry]], int]:
    puts: dict[str, list[PutEntry]] = defaultdict(list)
    passed_over = 0
    for record in batch:
        letter = parse_letter(record)
        if (
            letter is None
            or letter.event is None
            or letter.event_truncated
            or letter.partition_key is None
        ):
            passed_over += 1  # malformed originals and envelopes kept without their data
            continue
        key = (
            "replay:"
            + hashlib.blake2b(
                f"{spec.name}/{record.stream}/{record.shard}/{record.sequence}".encode(),
                digest_size=16,
            ).hexdigest()
        )
        puts[letter.stream].append(PutEntry(letter.event, letter.partition_key, key))
    return puts, passed_over
