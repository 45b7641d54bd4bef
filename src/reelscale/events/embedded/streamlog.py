"""One named stream on local disk: its shard logs, shard map, retention and dedup window.

    <root>/streams/<name>/stream.json      retention and shard map, replaced atomically
    <root>/streams/<name>/shard-<id>/      that shard's segments (see `segments`)

`stream.json` is written last when a stream is created, so a directory without it is
the leftover of a create that crashed half-way, and is ignored.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from reelscale.core.errors import NotFound
from reelscale.events.embedded.frames import HEADER_SIZE, CorruptLog
from reelscale.events.embedded.segments import Segment, ShardLog, fsync_dir
from reelscale.events.records import Record, decode_event
from reelscale.events.shardmap import ShardMap

META = "stream.json"


def to_us(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def from_us(timestamp_us: int) -> datetime:
    return datetime.fromtimestamp(timestamp_us / 1_000_000, UTC)


@dataclass(slots=True)
class DedupEntry:
    shard: int
    sequence: int
    timestamp_us: int
    # The record itself while its batch is being written (it cannot be read back yet);
    # dropped once acknowledged, to keep the window small.
    record: Record | None = None


class StreamLog:
    """The on-disk state of one stream. Only the store's flusher mutates it."""

    def __init__(
        self,
        name: str,
        directory: Path,
        shard_map: ShardMap,
        *,
        max_age_s: float | None,
        max_bytes: int | None,
    ) -> None:
        self.name = name
        self.directory = directory
        self.shard_map = shard_map
        self.router = shard_map.router()
        self.max_age_s = max_age_s
        self.max_bytes = max_bytes
        self.logs: dict[int, ShardLog] = {}
        self.last_ts_us = 0  # appends get non-decreasing timestamps, so time seeks bisect
        self.dedup: dict[str, DedupEntry] = {}  # insertion order is time order
        self.deleted = False
        self._signals: dict[int, asyncio.Event] = {}

    # -- lifecycle ------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        name: str,
        directory: Path,
        *,
        shards: int,
        max_age_s: float | None,
        max_bytes: int | None,
    ) -> StreamLog:
        if directory.exists():
            shutil.rmtree(directory)  # a create that crashed before writing stream.json
        directory.mkdir(parents=True)
        stream = cls(
            name, directory, ShardMap.initial(shards), max_age_s=max_age_s, max_bytes=max_bytes
        )
        stream._open_logs()
        stream.save_meta()
        fsync_dir(directory.parent)
        return stream

    @classmethod
    def load(cls, directory: Path, *, dedup_window_s: float, now_us: int) -> StreamLog | None:
        meta_path = directory / META
        if not meta_path.exists():
            return None
        meta = orjson.loads(meta_path.read_bytes())
        stream = cls(
            directory.name,
            directory,
            ShardMap.from_epoch_sizes(meta["epochs"]),
            max_age_s=meta["max_age_s"],
            max_bytes=meta["max_bytes"],
        )
        stream._open_logs()
        stream.last_ts_us = max(
            (s.last_ts_us or 0 for log in stream.logs.values() for s in log.segments), default=0
        )
        stream._recover_dedup(now_us - int(dedup_window_s * 1_000_000))
        return stream

    def _open_logs(self) -> None:
        for shard in self.shard_map.shards:
            if shard.id not in self.logs:
                self.logs[shard.id] = ShardLog.open(shard.id, self.directory / f"shard-{shard.id}")

    def save_meta(self) -> None:
        meta = {
            "max_age_s": self.max_age_s,
            "max_bytes": self.max_bytes,
            "epochs": self.shard_map.epoch_sizes,
        }
        tmp = self.directory / f"{META}.{uuid.uuid4().hex}.tmp"
        with tmp.open("wb") as handle:
            handle.write(orjson.dumps(meta, option=orjson.OPT_INDENT_2))
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(self.directory / META)
        fsync_dir(self.directory)

    def reshard(self, shards: int) -> None:
        resharded = self.shard_map.reshard(shards)
        # The new shards' logs exist, on disk and here, before any map names them.
        for shard in resharded.open_shards:
            self.logs[shard.id] = ShardLog.open(shard.id, self.directory / f"shard-{shard.id}")
        previous = self.shard_map
        self.shard_map = resharded
        try:
            self.save_meta()
        except OSError:
            self.shard_map = previous
            raise
        self.router = resharded.router()

    def close(self) -> None:
        for shard_log in self.logs.values():
            shard_log.close()

    def destroy(self) -> None:
        """Delete the stream's files: rename first, so a crash leaves no half stream."""
        self.deleted = True
        self.close()
        graveyard = self.directory.with_name(f".deleted-{self.name}-{uuid.uuid4().hex}")
        self.directory.rename(graveyard)
        fsync_dir(self.directory.parent)
        shutil.rmtree(graveyard, ignore_errors=True)
        for signal in self._signals.values():
            signal.set()

    # -- readers' wake-ups ----------------------------------------------------------------

    def signal(self, shard: int) -> asyncio.Event:
        """An event set the next time records are acknowledged on `shard`."""
        event = self._signals.get(shard)
        if event is None:
            event = self._signals[shard] = asyncio.Event()
        return event

    def notify(self, shard: int) -> None:
        event = self._signals.pop(shard, None)
        if event is not None:
            event.set()

    # -- lookups --------------------------------------------------------------------------

    def log(self, shard: int) -> ShardLog:
        shard_log = self.logs.get(shard)
        if shard_log is None:
            raise NotFound(f"stream {self.name!r} has no shard {shard}")
        return shard_log

    def locate(self, shard: int, sequence: int) -> tuple[Segment, int] | None:
        """The segment and offset of a record, or None if it is not (or no longer) kept."""
        shard_log = self.log(shard)
        segment = shard_log.segments[shard_log.segment_for_sequence(sequence)]
        if not segment.base <= sequence < segment.end_sequence:
            return None
        return segment, segment.seek(sequence=sequence)

    def record_at(self, shard: int, sequence: int) -> Record | None:
        found = self.locate(shard, sequence)
        if found is None:
            return None
        segment, offset = found
        for frame, chunk, pos in segment.frames_from(offset):
            return self.decode(shard, frame, chunk, pos)
        return None

    def decode(
        self, shard: int, frame: tuple[int, int, int, int, int, int], chunk: bytes, pos: int
    ) -> Record:
        _, size, sequence, ts, key_len, idem_len = frame
        body = pos + HEADER_SIZE
        key = chunk[body : body + key_len].decode()
        event = decode_event(chunk[body + key_len + idem_len : pos + size])
        return Record(self.name, shard, sequence, key, from_us(ts), event)

    # -- retention ------------------------------------------------------------------------

    def enforce_retention(self, now_us: int) -> int:
        """Delete whole segments past the age or size limit; returns how many."""
        dropped = 0
        if self.max_age_s is not None:
            cutoff = now_us - int(self.max_age_s * 1_000_000)
            for shard_log in self.logs.values():
                while _expired(shard_log.segments[0], cutoff):
                    shard_log.drop_oldest()
                    dropped += 1
        if self.max_bytes is not None:
            total = sum(shard_log.size_bytes for shard_log in self.logs.values())
            while total > self.max_bytes:
                candidates = [log for log in self.logs.values() if log.segments[0].count]
                if not candidates:
                    break
                oldest = min(candidates, key=lambda log: log.segments[0].first_ts_us or 0)
                total -= oldest.drop_oldest().size
                dropped += 1
        return dropped

    # -- idempotency ----------------------------------------------------------------------

    def prune_dedup(self, cutoff_us: int) -> None:
        while self.dedup:
            key = next(iter(self.dedup))
            if self.dedup[key].timestamp_us >= cutoff_us:
                break
            del self.dedup[key]

    def _recover_dedup(self, cutoff_us: int) -> None:
        """Rebuild the dedup window from the keyed records appended within it."""
        found: list[tuple[int, str, DedupEntry]] = []
        for shard, shard_log in self.logs.items():
            for key, entry in _keyed_records_since(shard, shard_log, cutoff_us):
                found.append((entry.timestamp_us, key, entry))
        for _, key, entry in sorted(found, key=lambda item: item[0]):
            self.dedup.setdefault(key, entry)


def _expired(segment: Segment, cutoff_us: int) -> bool:
    return segment.count > 0 and segment.last_ts_us is not None and segment.last_ts_us < cutoff_us


def _keyed_records_since(
    shard: int, shard_log: ShardLog, cutoff_us: int
) -> Iterator[tuple[str, DedupEntry]]:
    for segment in reversed(shard_log.segments):
        if segment.last_ts_us is not None and segment.last_ts_us < cutoff_us:
            break
        try:
            for (_, _, sequence, ts, key_len, idem_len), chunk, pos in segment.frames_from(0):
                if idem_len and ts >= cutoff_us:
                    start = pos + HEADER_SIZE + key_len
                    yield chunk[start : start + idem_len].decode(), DedupEntry(shard, sequence, ts)
        except CorruptLog:
            continue  # reads of that segment will report it; dedup is best effort there
