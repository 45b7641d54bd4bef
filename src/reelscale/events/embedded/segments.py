"""One shard's log on disk: a directory of append-only segment files.

A segment is named by the sequence number of its first record (`00000000000000000042.seg`)
and holds frames (see `frames`). Sequence numbers are dense per shard, so the next
segment's name tells where this one ends. Only the newest segment is ever written; the
older ones are sealed, so a crash can only tear the newest one's tail, and recovery
scans just that segment.
"""

from __future__ import annotations

import bisect
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from reelscale.events.embedded.frames import HEADER, HEADER_SIZE, CorruptLog, Frame, scan

log = logging.getLogger("reelscale.events.embedded")

SUFFIX = ".seg"
READ_CHUNK = 1 << 20
SPARSE_EVERY = 256  # records between the positions a segment remembers for seeking

Located = tuple[Frame, bytes, int]


def fsync_dir(directory: Path) -> None:
    """Make a file's creation, rename or removal in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Segment:
    """One segment file. `size` counts only bytes that are fsynced (acknowledged)."""

    __slots__ = (
        "base",
        "count",
        "deleted",
        "fd",
        "first_ts_us",
        "last_ts_us",
        "path",
        "size",
        "sparse",
    )

    def __init__(self, path: Path, base: int, fd: int) -> None:
        self.path = path
        self.base = base
        self.fd = fd
        self.size = 0
        self.count = 0
        self.first_ts_us: int | None = None
        self.last_ts_us: int | None = None
        self.deleted = False
        # (sequence, offset, timestamp_us) of every SPARSE_EVERY-th record, learnt by scans:
        # committed bytes never change, so what was learnt stays true.
        self.sparse: list[tuple[int, int, int]] = []

    @property
    def end_sequence(self) -> int:
        """One past the last record's sequence."""
        return self.base + self.count

    def read(self, offset: int, length: int) -> bytes:
        return os.pread(self.fd, min(length, self.size - offset), offset)

    def frames_from(self, offset: int, *, chunk_size: int = READ_CHUNK) -> Iterator[Located]:
        """Every committed frame from `offset` on: (frame, chunk, where it starts in chunk).

        The frame's own offset is its offset in the segment file.
        """
        while offset < self.size:
            chunk = self.read(offset, chunk_size)
            consumed = 0
            for start, size, sequence, ts, key_len, idem_len in scan(chunk):
                consumed = start + size
                yield (offset + start, size, sequence, ts, key_len, idem_len), chunk, start
            if consumed == 0:
                chunk = self._whole_frame_at(offset)
                for _, size, sequence, ts, key_len, idem_len in scan(chunk):
                    consumed = size
                    yield (offset, size, sequence, ts, key_len, idem_len), chunk, 0
            if consumed == 0:
                # Committed bytes are whole frames, so a frame that does not parse here is
                # damage to acknowledged data, not a torn write.
                raise CorruptLog(f"{self.path}: bad frame at offset {offset}")
            offset += consumed

    def _whole_frame_at(self, offset: int) -> bytes:
        # A frame bigger than READ_CHUNK: read exactly its declared size.
        head = self.read(offset, HEADER_SIZE)
        if len(head) < HEADER_SIZE:
            raise CorruptLog(f"{self.path}: truncated frame at offset {offset}")
        body_len = HEADER.unpack_from(head)[0]
        return self.read(offset, HEADER_SIZE + body_len)

    def seek(self, *, sequence: int | None = None, timestamp_us: int | None = None) -> int:
        """The offset of the first record at or after a sequence number or a timestamp."""
        if sequence is not None:
            index = bisect.bisect_right(self.sparse, (sequence, 1 << 62)) - 1
        else:
            index = bisect.bisect_right([t for _, _, t in self.sparse], (timestamp_us or 0) - 1) - 1
        offset = self.sparse[index][1] if index >= 0 else 0
        for frame, _, _ in self.frames_from(offset):
            start, _, seq, ts, _, _ = frame
            if (seq - self.base) % SPARSE_EVERY == 0 and (
                not self.sparse or self.sparse[-1][0] < seq
            ):
                self.sparse.append((seq, start, ts))
            if (sequence is not None and seq >= sequence) or (
                timestamp_us is not None and ts >= timestamp_us
            ):
                return start
        return self.size

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class ShardLog:
    """The segments of one shard, the newest of which takes appends."""

    def __init__(self, shard: int, directory: Path, segments: list[Segment]) -> None:
        self.shard = shard
        self.directory = directory
        self.segments = segments
        # The next sequence to hand out. It runs ahead of `committed_end` while batches
        # are being written, because the committer prepares the next batch during an fsync.
        self.next_sequence = 1
        self.in_flight = 0  # records handed a sequence and not yet acknowledged
        self.repaired_bytes = 0  # torn tail cut off when this log was opened

    # -- opening ------------------------------------------------------------------------

    @classmethod
    def open(cls, shard: int, directory: Path, *, first_sequence: int = 1) -> ShardLog:
        """Open, or create, a shard's log; repair a torn tail left by a crash."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = sorted(directory.glob(f"*{SUFFIX}"), key=lambda p: int(p.stem))
        shard_log = cls(shard, directory, [])
        if not paths:
            shard_log.roll(first_sequence)
            fsync_dir(directory)
            shard_log.next_sequence = first_sequence
            return shard_log
        for path in paths:
            segment = Segment(path, int(path.stem), os.open(path, os.O_RDWR | os.O_APPEND))
            segment.size = os.fstat(segment.fd).st_size
            shard_log.segments.append(segment)
        for sealed, following in zip(shard_log.segments, shard_log.segments[1:], strict=False):
            sealed.count = following.base - sealed.base
            sealed.first_ts_us = _first_timestamp(sealed)
            sealed.last_ts_us = _first_timestamp(following)  # an upper bound is enough
        shard_log._recover_tail(shard_log.segments[-1])
        shard_log.next_sequence = shard_log.active.end_sequence
        return shard_log

    def _recover_tail(self, segment: Segment) -> None:
        data = os.pread(segment.fd, segment.size, 0)
        length = 0
        for offset, size, sequence, ts, _, _ in scan(data):
            if sequence != segment.base + segment.count:
                break  # a stale frame from before a crash cannot follow a newer one
            if segment.count % SPARSE_EVERY == 0:
                segment.sparse.append((sequence, offset, ts))
            if segment.first_ts_us is None:
                segment.first_ts_us = ts
            segment.last_ts_us = ts
            segment.count += 1
            length = offset + size
        size_before = segment.size
        if length < segment.size:
            # Never acknowledged: a put is acked only after the fsync that covers it, and a
            # torn write leaves the newest batch incomplete. Drop it so appends follow
            # whole frames.
            log.warning(
                "truncating torn tail",
                extra={
                    "segment": str(segment.path),
                    "kept": length,
                    "dropped": segment.size - length,
                },
            )
            os.ftruncate(segment.fd, length)
            os.fsync(segment.fd)
            segment.size = length
            self.repaired_bytes = size_before - length

    # -- state --------------------------------------------------------------------------

    @property
    def active(self) -> Segment:
        return self.segments[-1]

    @property
    def first_sequence(self) -> int:
        """The oldest sequence still kept (equal to next_sequence when the shard is empty)."""
        for segment in self.segments:
            if segment.count:
                return segment.base
        return self.committed_end

    @property
    def committed_end(self) -> int:
        """One past the newest acknowledged record's sequence."""
        return self.active.end_sequence

    @property
    def size_bytes(self) -> int:
        return sum(segment.size for segment in self.segments)

    # -- writing (only the store's flusher calls these) -----------------------------------

    def roll(self, base: int | None = None) -> Segment:
        """Start a new, empty segment for the next records."""
        base = self.next_sequence if base is None else base
        path = self.directory / f"{base:020d}{SUFFIX}"
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
        segment = Segment(path, base, fd)
        self.segments.append(segment)
        return segment

    def write(self, segment: Segment, data: bytes, *, new_segment: bool) -> None:
        """Append and fsync (and the directory, for a new file). Runs in a worker thread."""
        view = memoryview(data)
        while view:
            view = view[os.write(segment.fd, view) :]
        os.fdatasync(segment.fd)
        if new_segment:
            fsync_dir(self.directory)

    def publish(self, segment: Segment, data: bytes, count: int, last_ts_us: int) -> None:
        """After the fsync: make the records visible to readers."""
        if segment.first_ts_us is None:
            segment.first_ts_us = HEADER.unpack_from(data, 0)[3]
        segment.size += len(data)
        segment.count += count
        segment.last_ts_us = last_ts_us
        self.in_flight -= count

    def abandon(self) -> None:
        """A write failed: cut the file back and take back every unacknowledged sequence."""
        try:
            os.ftruncate(self.active.fd, self.active.size)
        except OSError:
            log.exception("could not truncate after a failed write", extra={"shard": self.shard})
        self.next_sequence = self.committed_end
        self.in_flight = 0

    def drop_oldest(self) -> Segment:
        """Delete the oldest segment (retention); roll first if it is the active one."""
        oldest = self.segments[0]
        if oldest is self.active:
            self.roll()
        self.segments.pop(0)
        oldest.deleted = True
        oldest.close()
        oldest.path.unlink(missing_ok=True)
        # Durable at once: a shard must never come back with no segment, or its sequence
        # numbers would start again from 1.
        fsync_dir(self.directory)
        return oldest

    # -- reading ------------------------------------------------------------------------

    def segment_for_sequence(self, sequence: int) -> int:
        bases = [segment.base for segment in self.segments]
        return max(0, bisect.bisect_right(bases, sequence) - 1)

    def segment_for_timestamp(self, timestamp_us: int) -> int:
        # The last segment whose first record is older than the time; records with that
        # very timestamp may end the previous segment.
        index = 0
        for i, segment in enumerate(self.segments):
            if segment.first_ts_us is not None and segment.first_ts_us < timestamp_us:
                index = i
        return index

    def close(self) -> None:
        for segment in self.segments:
            segment.close()


def _first_timestamp(segment: Segment) -> int | None:
    head = os.pread(segment.fd, HEADER_SIZE, 0)
    if len(head) < HEADER_SIZE:
        return None
    return int(HEADER.unpack_from(head)[3])
