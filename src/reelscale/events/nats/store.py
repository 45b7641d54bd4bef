"""The NATS JetStream event store.

    named stream <name>   -> JetStream stream <name>, one subject per shard: <name>.<shard>
    shard map             -> the stream's description ("reelscale:" + the epochs' sizes)
    checkpoints           -> KV bucket rs-ckpt-<name>, key <group>.<shard>
    (group, open shard)   -> durable pull consumer <group>_<shard>, acked up to checkpoints
    idempotency key       -> Nats-Msg-Id, deduplicated by JetStream within the window
    retention             -> max_age and max_bytes on the stream (discard old)

Resharding updates the stream in one call: the new shard map goes into the description
and the stream's subjects become the new shards' only. That is the fence: a publisher
still routing by the old map gets "no stream" from the server, reloads the map and
retries, so no record lands in a parent after readers have drained it. Messages already
on the parents stay (and age out as usual); since JetStream (2.9) refuses a consumer
whose filter is not among the stream's subjects, closed shards are read by direct gets.

Sequence numbers are JetStream's stream sequence: unique in the stream, increasing per
shard. Put timestamps are the client's clock; read timestamps are the server's.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

import nats
from nats.aio.client import Client
from nats.errors import MaxPayloadError
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.client import KV_PRE_TEMPLATE
from nats.js.errors import KeyNotFoundError, NoStreamResponseError
from nats.js.errors import NotFoundError as JsNotFound
from nats.js.kv import KeyValue

from reelscale.core.clock import Clock
from reelscale.core.errors import Conflict, NotFound, Overloaded, PayloadTooLarge
from reelscale.events.nats.reader import (
    KEY_HEADER,
    NatsShardReader,
    consumer_name,
    record_from_raw,
)
from reelscale.events.records import (
    MAX_EVENT_BYTES,
    PutEntry,
    Record,
    ShardLag,
    StartAt,
    StreamInfo,
    check_name,
    check_retention,
    check_shard_count,
    encode_entry,
)
from reelscale.events.shardmap import ShardMap
from reelscale.events.store import DEFAULT_IDEMPOTENCY_WINDOW_S, EventStore, ShardReader

DESCRIPTION_PREFIX = "reelscale:"
MAP_TTL_S = 5.0  # a cached shard map is re-read this often (and at once when fenced)
_PUT_ATTEMPTS = 5
_CLOSED_LAG_SCAN_LIMIT = 10_000
_CHECKPOINT_TIMEOUT_S = 5.0  # nats-py's default JetStream request timeout


class NatsEventStore(EventStore):
    name = "events.nats"

    def __init__(
        self,
        url: str,
        *,
        clock: Clock | None = None,
        max_event_bytes: int = MAX_EVENT_BYTES,
        idempotency_window_s: float = DEFAULT_IDEMPOTENCY_WINDOW_S,
        connect_timeout_s: float = 5.0,
        max_reconnect_attempts: int = 60,
    ) -> None:
        super().__init__(
            clock=clock, max_event_bytes=max_event_bytes, idempotency_window_s=idempotency_window_s
        )
        self.url = url
        self.connect_timeout_s = connect_timeout_s
        # nats-py waits 2 s between attempts: the default rides out a two-minute outage.
        self.max_reconnect_attempts = max_reconnect_attempts
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._maps: dict[str, tuple[float, ShardMap]] = {}
        self._map_loads: dict[str, asyncio.Task[ShardMap]] = {}  # one reload at a time
        self._buckets: dict[str, KeyValue] = {}
        self._readers: set[NatsShardReader] = set()

    # -- lifecycle ------------------------------------------------------------------------

    async def on_start(self) -> None:
        self._nc = await nats.connect(
            self.url,
            connect_timeout=int(self.connect_timeout_s),
            max_reconnect_attempts=self.max_reconnect_attempts,
            allow_reconnect=True,
        )
        self._js = self._nc.jetstream()

    async def on_stop(self) -> None:
        for reader in list(self._readers):
            await reader.close()
        for loading in list(self._map_loads.values()):
            loading.cancel()
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.drain()
        self._nc = self._js = None
        self._maps.clear()
        self._buckets.clear()

    @property
    def nc(self) -> Client:
        if self._nc is None:
            raise Overloaded("the event store is not connected", retry_after=1)
        return self._nc

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise Overloaded("the event store is not connected", retry_after=1)
        return self._js

    # -- streams --------------------------------------------------------------------------

    def _config(
        self, name: str, shard_map: ShardMap, max_age_s: float | None, max_bytes: int | None
    ) -> StreamConfig:
        window = self.idempotency_window_s
        if max_age_s is not None:
            window = min(window, max_age_s)  # JetStream refuses a window past max_age
        return StreamConfig(
            name=name,
            description=DESCRIPTION_PREFIX + ",".join(str(n) for n in shard_map.epoch_sizes),
            subjects=[f"{name}.{shard.id}" for shard in shard_map.open_shards],
            retention=RetentionPolicy.LIMITS,
            discard=DiscardPolicy.OLD,
            storage=StorageType.FILE,
            max_age=max_age_s or 0,
            max_bytes=max_bytes or -1,
            duplicate_window=window,
            allow_direct=True,
        )

    async def _load(self, name: str) -> tuple[ShardMap, StreamConfig]:
        try:
            info = await self.js.stream_info(name)
        except JsNotFound as exc:
            raise NotFound(f"no stream {name!r}") from exc
        description = info.config.description or ""
        if not description.startswith(DESCRIPTION_PREFIX):
            raise NotFound(f"JetStream stream {name!r} is not a reelscale stream")
        sizes = [int(n) for n in description[len(DESCRIPTION_PREFIX) :].split(",")]
        shard_map = ShardMap.from_epoch_sizes(sizes)
        self._maps[name] = (self.clock.monotonic(), shard_map)
        return shard_map, info.config

    async def shard_map(self, name: str, *, fresh: bool = False) -> ShardMap:
        check_name("stream", name)
        cached = self._maps.get(name)
        if not fresh and cached and self.clock.monotonic() - cached[0] < MAP_TTL_S:
            return cached[1]
        # When the cached map expires, every put in flight wants it: they all wait for one
        # reload rather than each sending the server a stream info request of its own
        # (thousands of them at a few thousand puts a second). A fresh map is one loaded
        # after the call, so `fresh` starts its own.
        loading = self._map_loads.get(name)
        if loading is None or fresh:
            loading = asyncio.create_task(self._load_map(name), name=f"events.nats.map.{name}")
            self._map_loads[name] = loading
            loading.add_done_callback(functools.partial(self._map_loaded, name))
        return await asyncio.shield(loading)

    async def _load_map(self, name: str) -> ShardMap:
        return (await self._load(name))[0]

    def _map_loaded(self, name: str, task: asyncio.Task[ShardMap]) -> None:
        if self._map_loads.get(name) is task:
            del self._map_loads[name]
        if not task.cancelled():
            task.exception()  # retrieved here too, in case every caller has gone

    async def create_stream(
        self,
        name: str,
        *,
        shards: int = 1,
        max_age_s: float | None = None,
        max_bytes: int | None = None,
    ) -> StreamInfo:
        check_name("stream", name)
        check_shard_count(shards)
        check_retention(max_age_s, max_bytes)
        try:
            shard_map, config = await self._load(name)
        except NotFound:
            shard_map = ShardMap.initial(shards)
            await self.js.add_stream(self._config(name, shard_map, max_age_s, max_bytes))
        else:
            if len(shard_map.open_shards) != shards:
                raise Conflict(
                    f"stream {name!r} has {len(shard_map.open_shards)} shards; "
                    "use reshard to change that"
                ) from None
            if (config.max_age or None, _bytes(config.max_bytes)) != (max_age_s, max_bytes):
                await self.js.update_stream(self._config(name, shard_map, max_age_s, max_bytes))
        await self._bucket(name)
        return await self.describe_stream(name)

    async def describe_stream(self, name: str) -> StreamInfo:
        shard_map, config = await self._load(name)
        return StreamInfo(
            name=name,
            shards=[s.id for s in shard_map.open_shards],
            closed_shards=[s.id for s in shard_map.closed_shards],
            max_age_s=config.max_age or None,
            max_bytes=_bytes(config.max_bytes),
        )

    async def list_streams(self) -> list[str]:
        infos = await self.js.streams_info()
        return sorted(
            info.config.name
            for info in infos
            if info.config.name and (info.config.description or "").startswith(DESCRIPTION_PREFIX)
        )

    async def delete_stream(self, name: str) -> None:
        await self._load(name)
        for reader in [r for r in self._readers if r.stream == name]:
            await reader.close()
        await self.js.delete_stream(name)
        with contextlib.suppress(JsNotFound):
            await self.js.delete_key_value(_bucket_name(name))
        self._maps.pop(name, None)
        self._buckets.pop(name, None)

    async def reshard(self, name: str, *, shards: int) -> StreamInfo:
        check_shard_count(shards)
        shard_map, config = await self._load(name)
        resharded = shard_map.reshard(shards)
        # One update: the new map and the fence (old subjects gone) take effect together.
        await self.js.update_stream(
            self._config(name, resharded, config.max_age or None, _bytes(config.max_bytes))
        )
        self._maps[name] = (self.clock.monotonic(), resharded)
        return await self.describe_stream(name)

    # -- writes ---------------------------------------------------------------------------

    async def put_batch(self, stream: str, entries: Sequence[PutEntry]) -> list[Record]:
        encoded = [encode_entry(entry, max_event_bytes=self.max_event_bytes) for entry in entries]
        if not encoded:
            await self.shard_map(stream)  # still NotFound for an unknown stream
            return []
        results: list[Record | None] = [None] * len(encoded)
        todo = list(range(len(encoded)))
        for attempt in range(_PUT_ATTEMPTS):
            shard_map = await self.shard_map(stream, fresh=attempt > 0)
            router = shard_map.router()
            when = self.clock.now()
            futures = []
            for index in todo:
                item = encoded[index]
                shard = router.shard_for(item.partition_key)
                headers = {KEY_HEADER: item.partition_key}
                if item.idempotency_key is not None:
                    headers["Nats-Msg-Id"] = item.idempotency_key
                try:
                    future = await self.js.publish_async(
                        f"{stream}.{shard}", item.payload, headers=headers
                    )
                except MaxPayloadError as exc:
                    raise PayloadTooLarge(f"event too large for the NATS server: {exc}") from exc
                futures.append((index, shard, future))
            fenced = []
            for index, shard, future in futures:
                try:
                    ack = await future
                except NoStreamResponseError:
                    fenced.append(index)  # resharded (or deleted) under us: reload and retry
                    continue
                item = encoded[index]
                if ack.duplicate:
                    results[index] = await self._stored(stream, ack.seq)
                else:
                    results[index] = Record(
                        stream, shard, ack.seq, item.partition_key, when, item.event
                    )
            if not fenced:
                return [record for record in results if record is not None]
            todo = fenced
        await self._load(stream)  # NotFound if the stream is gone
        raise Overloaded(f"stream {stream!r} kept changing shards; retry", retry_after=1)

    async def _stored(self, stream: str, sequence: int) -> Record:
        raw = await self.js.get_msg(stream, seq=sequence, direct=True)
        record = record_from_raw(stream, raw)
        if record is None:
            raise NotFound(f"record {sequence} of {stream!r} is unreadable")
        return record

    # -- reads ----------------------------------------------------------------------------

    async def _open_reader(
        self,
        stream: str,
        *,
        group: str,
        shard: int,
        start: StartAt,
        ack_wait_s: float,
        parents: tuple[int, ...],
    ) -> ShardReader:
        reader = NatsShardReader(
            self,
            stream,
            group=group,
            shard=shard,
            start=start,
            ack_wait_s=ack_wait_s,
            parents=parents,
        )
        await reader.open()
        self._readers.add(reader)
        return reader

    def forget_reader(self, reader: NatsShardReader) -> None:
        self._readers.discard(reader)

    async def _bucket(self, stream: str) -> KeyValue:
        bucket = self._buckets.get(stream)
        if bucket is None:
            try:
                bucket = await self.js.key_value(_bucket_name(stream))
            except Exception:
                bucket = await self.js.create_key_value(bucket=_bucket_name(stream), history=1)
            self._buckets[stream] = bucket
        return bucket

    async def load_checkpoint(self, stream: str, *, group: str, shard: int) -> int | None:
        bucket = await self._bucket(stream)
        try:
            entry = await bucket.get(f"{group}.{shard}")
        except KeyNotFoundError:
            return None
        return int(entry.value) if entry.value else None

    async def save_checkpoint(self, stream: str, *, group: str, shard: int, sequence: int) -> None:
        saved = await self.send_checkpoint(stream, group=group, shard=shard, sequence=sequence)
        await saved()

    async def send_checkpoint(
        self, stream: str, *, group: str, shard: int, sequence: int
    ) -> Callable[[], Awaitable[None]]:
        """Send a checkpoint; the returned function waits until the server has saved it.

        What KeyValue.put does (a publish to the bucket's subject, saved once the server
        acks it), without nats-py's request: on Python 3.11 its wait_for can swallow a
        cancellation that comes with the ack, and a reader's task then never stops.
        """
        await self._bucket(stream)
        subject = KV_PRE_TEMPLATE.format(bucket=_bucket_name(stream)) + f"{group}.{shard}"
        ack = await self.js.publish_async(subject, str(sequence).encode())

        async def saved() -> None:
            async with asyncio.timeout(_CHECKPOINT_TIMEOUT_S):
                await ack

        return saved

    async def shard_tail(self, stream: str, shard: int) -> tuple[int, datetime] | None:
        try:
            raw = await self.js.get_last_msg(stream, f"{stream}.{shard}", direct=True)
        except JsNotFound:
            return None
        record = record_from_raw(stream, raw)
        return (raw.seq or 0, record.timestamp if record else self.clock.now())

    async def next_record(self, stream: str, shard: int, sequence: int) -> Record | None:
        """The first kept record of a shard at or after `sequence`, if any."""
        while True:
            try:
                raw = await self.js.get_msg(
                    stream,
                    seq=max(sequence, 1),
                    subject=f"{stream}.{shard}",
                    next=True,
                    direct=True,
                )
            except JsNotFound:
                return None
            record = record_from_raw(stream, raw)
            if record is not None:
                return record
            sequence = (raw.seq or sequence) + 1  # not one of ours: step over it

    async def lag(self, stream: str, *, group: str) -> list[ShardLag]:
        check_name("group", group)
        shard_map = await self.shard_map(stream, fresh=True)
        now = self.clock.now()
        out = []
        for shard in shard_map.shards:
            checkpoint = await self.load_checkpoint(stream, group=group, shard=shard.id)
            first = await self.next_record(stream, shard.id, (checkpoint or 0) + 1)
            if first is None:
                out.append(ShardLag(shard.id, 0, 0.0, checkpoint))
                continue
            behind = await self._count_from(stream, group, shard.id, first.sequence, shard_map)
            age = max(0.0, (now - first.timestamp).total_seconds())
            out.append(ShardLag(shard.id, behind, age, checkpoint))
        return out

    async def _count_from(
        self, stream: str, group: str, shard: int, sequence: int, shard_map: ShardMap
    ) -> int:
        """How many records a shard holds from `sequence` (one of them) on."""
        subject = f"{stream}.{shard}"
        info = await self.js.stream_info(stream, subjects_filter=subject)
        oldest = await self.next_record(stream, shard, 1)
        if oldest is not None and oldest.sequence == sequence:
            return int((info.state.subjects or {}).get(subject, 0))  # all of them
        if shard_map.is_open(shard):
            # The group's consumer sits at its checkpoint (acks follow checkpoints), so
            # what it has not had acked is exactly what the group is behind by.
            with contextlib.suppress(JsNotFound):
                consumer = await self.js.consumer_info(stream, consumer_name(group, shard))
                return (consumer.num_pending or 0) + (consumer.num_ack_pending or 0)
        # A closed shard, read by direct gets: count them, up to a limit.
        count = 0
        record: Record | None = await self.next_record(stream, shard, sequence)
        while record is not None and count < _CLOSED_LAG_SCAN_LIMIT:
            count += 1
            record = await self.next_record(stream, shard, record.sequence + 1)
        return count


def _bucket_name(stream: str) -> str:
    return f"rs-ckpt-{stream}"


def _bytes(value: int | None) -> int | None:
    return value if value is not None and value > 0 else None
