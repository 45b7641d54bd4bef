"""The on-disk frame: how one record is laid out in a segment file.

    u32 body_len | u32 crc32 | u64 sequence | i64 timestamp_us | u16 key_len | u16 idem_len
    | partition key (utf-8) | idempotency key (utf-8) | event (JSON)

The CRC covers everything after itself, so a torn or flipped byte anywhere in the header
or the body fails it. Lengths come first so a scan can step over a frame cheaply.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

from reelscale.core.errors import PlatformError

HEADER = struct.Struct("<IIQqHH")
HEADER_SIZE = HEADER.size  # 28
_CHECKED = struct.Struct("<QqHH")  # the header fields the CRC covers
_LEN_CRC = struct.Struct("<II")
# Anything longer than this is a corrupt length field, not a record: events are capped
# well below it.
MAX_BODY = 4 * 1024 * 1024

# (offset of the frame in the scanned data, frame size, sequence, timestamp_us,
#  key_len, idem_len): a tuple, not an object, because scans run per record.
Frame = tuple[int, int, int, int, int, int]


class CorruptLog(PlatformError):
    """A part of the log that was acknowledged failed its checksum."""

    title = "Corrupt Event Log"


def frame_header(
    sequence: int, timestamp_us: int, key_len: int, idem_len: int, body: bytes
) -> bytes:
    """The header that goes before `body` (key + idempotency key + event JSON)."""
    checked = _CHECKED.pack(sequence, timestamp_us, key_len, idem_len)
    return _LEN_CRC.pack(len(body), zlib.crc32(body, zlib.crc32(checked))) + checked


def encode_frame(
    sequence: int, timestamp_us: int, key_len: int, idem_len: int, body: bytes
) -> bytes:
    """One whole frame."""
    return frame_header(sequence, timestamp_us, key_len, idem_len, body) + body


def scan(data: bytes | memoryview) -> Iterator[Frame]:
    """Yield each whole frame in `data` whose checksum holds, in order.

    Stops, without raising, at the first frame that is incomplete or fails its CRC: the
    caller decides whether that is a torn tail (recovery) or corruption (sealed data).
    """
    view = memoryview(data)
    pos = 0
    end = len(view)
    unpack = HEADER.unpack_from
    crc32 = zlib.crc32
    while end - pos >= HEADER_SIZE:
        body_len, crc, sequence, ts, key_len, idem_len = unpack(view, pos)
        frame_end = pos + HEADER_SIZE + body_len
        if body_len > MAX_BODY or frame_end > end or key_len + idem_len > body_len:
            return
        if (
            crc32(view[pos + HEADER_SIZE : frame_end], crc32(view[pos + 8 : pos + HEADER_SIZE]))
            != crc
        ):
            return
        yield pos, HEADER_SIZE + body_len, sequence, ts, key_len, idem_len
        pos = frame_end


def valid_prefix(data: bytes | memoryview) -> tuple[int, int]:
    """How many leading bytes of `data` are whole, checksummed frames, and how many frames."""
    length = 0
    count = 0
    for offset, size, *_ in scan(data):
        length = offset + size
        count += 1
    return length, count
