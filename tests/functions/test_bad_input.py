"""Bad input ends in a clear error or a dead letter, never a blocked shard or lost events."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from reelscale.core.errors import BadRequest, PayloadTooLarge
from reelscale.events.records import MAX_EVENT_BYTES, EncodedEvent, Record
from reelscale.functions import BatchFailure, FunctionsRuntime
from tests.events.conftest import entries, event
from tests.functions.conftest import Rig, eventually


async def caught_up(runtime: FunctionsRuntime, name: str) -> bool:
    return (await runtime.function_status(name)).lag_records == 0


async def state_is(runtime: FunctionsRuntime, name: str, state: str) -> bool:
    return (await runtime.function_status(name)).state == state


def collector() -> tuple[list[int], object]:
    seen: list[int] = []

    async def handle(batch: list[Record]) -> BatchFailure | None:
        seen.extend(record.event.data["n"] for record in batch)
        return None

    return seen, handle


async def test_an_oversized_event_is_refused_at_the_put_and_the_rest_flow(rig: Rig) -> None:
    stream = rig.stream()
    seen, handle = collector()
    spec = rig.add(stream=stream, handler=handle)
    async with rig.running() as runtime:
        await eventually(lambda: state_is(runtime, spec.name, "running"))
        await rig.store.put(stream, event(0), partition_key="k")
        with pytest.raises(PayloadTooLarge, match="limit is 1000000"):
            await rig.store.put(stream, event(1, size=MAX_EVENT_BYTES), partition_key="k")
        await rig.store.put(stream, event(2), partition_key="k")
        await eventually(lambda: seen == [0, 2])


async def test_a_failing_event_too_large_to_keep_whole_is_dead_lettered_without_its_data(
    rig: Rig,
) -> None:
    stream = rig.stream()
    await rig.store.create_stream(stream)
    overhead = len(orjson.dumps(event(0, size=1).__dict__)) - 1
    big = event(0, size=MAX_EVENT_BYTES - overhead - 50)  # fits, but not beside an error
    await rig.store.put(stream, big, partition_key="k")
    await rig.store.put_batch(stream, entries(1, start=1))
    done: list[int] = []

    async def refuses_big(batch: list[Record]) -> BatchFailure | None:
        for record in batch:
            if "blob" in record.event.data:
                raise ValueError("too big for the warehouse")
            done.append(record.event.data["n"])
        return None

    spec = rig.add(stream=stream, handler=refuses_big, batch_size=1, max_retries=0)
    async with rig.running() as runtime:
        await eventually(lambda: done == [1])
        (letter,) = await runtime.dead_letters(spec.name)
        replay = await runtime.replay(spec.name)
    assert letter.event_truncated
    assert letter.event is not None
    assert (letter.event.id, letter.event.type, letter.event.data) == (big.id, big.type, {})
    assert "too big for the warehouse" in letter.error
    assert (replay.replayed, replay.skipped) == (0, 1)  # nothing whole to put back


async def test_a_malformed_envelope_is_refused_at_the_put(rig: Rig) -> None:
    stream = rig.stream()
    await rig.store.create_stream(stream)
    with pytest.raises(BadRequest, match="malformed CloudEvent"):
        await rig.store.put(stream, {"type": "no id, no source"}, partition_key="k")


async def test_a_malformed_stored_record_is_stepped_over(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """A record that passed its CRC but is not a CloudEvent (a bug in an older writer, or
    a message published to NATS around the store) must not hold up its shard."""
    stream = rig.stream()
    await rig.store.create_stream(stream)
    (first,) = await rig.store.put_batch(stream, entries(1))
    await store_malformed(rig, stream)
    await rig.store.put_batch(stream, entries(3, start=1))
    seen, handle = collector()
    spec = rig.add(stream=stream, handler=handle)
    async with rig.running() as runtime:
        await eventually(lambda: seen == [0, 1, 2, 3])
        await eventually(lambda: caught_up(runtime, spec.name))
        letters = await runtime.dead_letters(spec.name)
    if rig.backend.name == "embedded":
        (letter,) = letters
        assert letter.reason == "malformed_record"
        assert letter.event is None
        assert letter.sequence is None
        assert f"after sequence {first.sequence} could not be decoded" in letter.error
        assert "not a CloudEvent" in letter.error
    else:
        # The NATS reader terminates such a message itself and logs it.
        assert letters == []
        assert "skipping a message that is not a reelscale record" in caplog.text


async def store_malformed(rig: Rig, stream: str) -> None:
    """Write bytes that are not a CloudEvent straight into the backend, past the checks."""
    payload = b'{"specversion": "0.3", "what": "not a cloud event"}'
    if rig.backend.name == "embedded":
        store = rig.store
        encoded = EncodedEvent(event(-1), payload, "k", None)
        await store.committer.submit(store._stream(stream), [(encoded, b"k" + payload, 1, 0)])
    else:
        from reelscale.events.nats.reader import KEY_HEADER

        await rig.store.js.publish(f"{stream}.0", payload, headers={KEY_HEADER: "k"})


async def test_an_unknown_stream_is_a_clear_error_and_other_functions_carry_on(
    rig: Rig,
) -> None:
    missing = rig.stream()
    present = rig.stream()
    await rig.store.create_stream(present)
    await rig.store.put_batch(present, entries(3))
    seen, handle = collector()
    strict = rig.add(stream=missing, handler=handle, create_stream=False)
    healthy_seen, healthy = collector()
    other = rig.add(stream=present, handler=healthy)
    async with rig.running() as runtime:
        await eventually(lambda: healthy_seen == [0, 1, 2])
        await eventually(lambda: state_is(runtime, strict.name, "failing"))
        status = await runtime.function_status(strict.name)
        assert status.last_error is not None
        assert f"no stream '{missing}'" in status.last_error
        assert status.lag_records is None
        assert (await runtime.function_status(other.name)).state == "running"
        # Once the stream exists the function starts on its own (supervised restart).
        await rig.store.create_stream(missing)
        await rig.store.put_batch(missing, entries(2))
        await eventually(lambda: seen == [0, 1])
        await eventually(lambda: state_is(runtime, strict.name, "running"))


async def test_a_stream_deleted_under_a_function_is_made_again(rig: Rig) -> None:
    stream = rig.stream()
    seen, handle = collector()
    spec = rig.add(stream=stream, handler=handle)
    async with rig.running() as runtime:
        await eventually(lambda: state_is(runtime, spec.name, "running"))
        await rig.store.put_batch(stream, entries(2))
        await eventually(lambda: seen == [0, 1])
        await rig.store.delete_stream(stream)
        await eventually(lambda: stream_exists(rig, stream))
        await eventually(lambda: state_is(runtime, spec.name, "running"))
        await eventually(lambda: put_and_check(rig, stream, seen))


async def stream_exists(rig: Rig, stream: str) -> bool:
    return stream in await rig.store.list_streams()


async def put_and_check(rig: Rig, stream: str, seen: list[int]) -> bool:
    if 7 not in seen:
        await rig.store.put(stream, event(7), partition_key="k")
        await asyncio.sleep(0.3)
    return 7 in seen


async def test_a_deleted_dead_letter_stream_is_made_again(rig: Rig) -> None:
    stream = rig.stream()

    async def broken(batch: list[Record]) -> BatchFailure | None:
        raise ValueError("broken")

    spec = rig.add(stream=stream, handler=broken, max_retries=0)
    async with rig.running() as runtime:
        await eventually(lambda: state_is(runtime, spec.name, "running"))
        await rig.store.delete_stream(spec.dead_letter_stream)
        await rig.store.put_batch(stream, entries(2))
        await eventually(lambda: caught_up(runtime, spec.name))
        assert len(await runtime.dead_letters(spec.name)) == 2


async def test_a_consumer_that_never_acks_does_not_hold_up_a_function(rig: Rig) -> None:
    stream = rig.stream()
    await rig.store.create_stream(stream)
    await rig.store.put_batch(stream, entries(4))
    sloppy = await rig.store.open_reader(stream, group="sloppy", shard=0, ack_wait_s=30)
    assert len(await sloppy.read(max_records=10, wait_s=1)) == 4  # read, never checkpointed
    seen, handle = collector()
    spec = rig.add(stream=stream, handler=handle)
    try:
        async with rig.running() as runtime:
            await eventually(lambda: seen == [0, 1, 2, 3])
            await eventually(lambda: caught_up(runtime, spec.name))
        (lag,) = await rig.store.lag(stream, group="sloppy")
        assert lag.records == 4  # still all owed to the group that never acked
    finally:
        await sloppy.close()


async def test_a_handler_raising_cancelled_error_is_a_failure_not_a_stop(rig: Rig) -> None:
    stream = rig.stream()
    await rig.store.create_stream(stream)
    await rig.store.put_batch(stream, entries(2))
    done: list[int] = []

    async def odd(batch: list[Record]) -> BatchFailure | None:
        if batch[0].event.data["n"] == 0:
            raise asyncio.CancelledError("a library gave up")
        done.append(batch[0].event.data["n"])
        return None

    spec = rig.add(stream=stream, handler=odd, batch_size=1, max_retries=0)
    async with rig.running() as runtime:
        await eventually(lambda: done == [1])
        (letter,) = await runtime.dead_letters(spec.name)
        assert "CancelledError: a library gave up" in letter.error
        assert (await runtime.function_status(spec.name)).state == "running"
