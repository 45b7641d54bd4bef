"""Registration checks every setting, and the small pure parts behave."""

from __future__ import annotations

from typing import Any

import pytest

from reelscale.core.errors import BadRequest, Conflict, NotFound
from reelscale.events.records import Record
from reelscale.functions import BatchFailure, FunctionRegistry, FunctionSpec
from reelscale.functions.executor import backoff_delay
from reelscale.functions.progress import ShardProgress, lane_for
from reelscale.functions.spec import derived_name


async def handler(batch: list[Record]) -> BatchFailure | None:
    return None


def test_the_decorator_registers_and_returns_the_handler() -> None:
    registry = FunctionRegistry()

    @registry.function("analytics-playback", stream="playback", batch_size=500, types=("p.",))
    async def handle(batch: list[Record]) -> BatchFailure | None:
        return None

    spec = registry.get("analytics-playback")
    assert spec.handler is handle
    assert (spec.stream, spec.batch_size, spec.types) == ("playback", 500, ("p.",))
    assert spec.consumer_group == "analytics-playback"
    assert spec.dead_letter_stream == "dlq-analytics-playback"
    assert spec.replay_group == "replay-analytics-playback"
    assert "analytics-playback" in registry
    assert len(registry) == 1
    with pytest.raises(NotFound, match="no function named 'other'"):
        registry.get("other")


def test_two_functions_with_one_name_are_refused() -> None:
    registry = FunctionRegistry()
    registry.add(FunctionSpec(name="f", stream="s", handler=handler))
    with pytest.raises(Conflict, match="already registered"):
        registry.add(FunctionSpec(name="f", stream="other", handler=handler))


def test_two_functions_in_one_group_on_one_stream_are_refused() -> None:
    registry = FunctionRegistry()
    registry.add(FunctionSpec(name="a", stream="s", handler=handler, group="shared"))
    with pytest.raises(Conflict, match="would share consumer group 'shared'"):
        registry.add(FunctionSpec(name="b", stream="s", handler=handler, group="shared"))
    registry.add(FunctionSpec(name="c", stream="t", handler=handler, group="shared"))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"name": "Bad_Name"}, "function name 'Bad_Name'"),
        ({"name": "x" * 49}, "function name"),
        ({"name": ""}, "function name"),
        ({"stream": "No Such/Stream"}, "stream name"),
        ({"group": "UPPER"}, "group name"),
        ({"batch_size": 0}, "batch_size must be an integer 1 to 10000"),
        ({"batch_size": 10_001}, "batch_size"),
        ({"batch_size": True}, "batch_size"),
        ({"batch_window_s": -1}, "batch_window_s"),
        ({"batch_window_s": float("nan")}, "batch_window_s"),
        ({"max_retries": -1}, "max_retries"),
        ({"retry_backoff_s": 2.0, "max_backoff_s": 1.0}, "max_backoff_s"),
        ({"max_record_age_s": 0}, "max_record_age_s"),
        ({"concurrency": 0}, "concurrency"),
        ({"parallelization": 11}, "parallelization must be an integer 1 to 10"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"types": "playback."}, "types must be a tuple of type prefixes"),
        ({"types": ("Play back",)}, "type prefix 'Play back'"),
        ({"start": "latest"}, "start must be a StartAt"),
        ({"stream": "dlq-f"}, "cannot read its own dead-letter stream"),
    ],
)
def test_bad_settings_fail_at_registration_naming_the_setting(
    options: dict[str, Any], message: str
) -> None:
    values: dict[str, Any] = {"name": "f", "stream": "s", "handler": handler, **options}
    with pytest.raises(BadRequest, match=message):
        FunctionRegistry().add(FunctionSpec(**values))


def test_a_handler_must_be_async() -> None:
    def blocking(batch: list[Record]) -> None:
        return None

    class AsyncCallable:
        async def __call__(self, batch: list[Record]) -> None:
            return None

    with pytest.raises(BadRequest, match="must be an async function"):
        FunctionSpec(name="f", stream="s", handler=blocking)  # type: ignore[arg-type]
    FunctionSpec(name="f", stream="s", handler=AsyncCallable())


def test_derived_names_fit_the_limit_and_stay_distinct() -> None:
    assert derived_name("dlq-", "short") == "dlq-short"
    long_a = "a" * 40 + "-first"
    long_b = "a" * 40 + "-second"
    dlq_a, dlq_b = derived_name("dlq-", long_a), derived_name("dlq-", long_b)
    assert len(dlq_a) <= 48
    assert len(dlq_b) <= 48
    assert dlq_a != dlq_b
    assert dlq_a.startswith("dlq-aaaa")
    assert derived_name("dlq-", long_a) == dlq_a  # stable
    spec = FunctionSpec(name="b" * 48, stream="s", handler=handler)
    assert len(spec.replay_group) <= 48
    assert spec.replay_group.startswith("replay-")


def test_a_key_always_maps_to_the_same_lane_and_keys_spread() -> None:
    keys = [f"key-{i}" for i in range(400)]
    lanes = [lane_for(key, 4) for key in keys]
    assert lanes == [lane_for(key, 4) for key in keys]
    assert sorted(set(lanes)) == [0, 1, 2, 3]
    assert min(lanes.count(lane) for lane in range(4)) > 50
    assert {lane_for(key, 1) for key in keys} == {0}


def test_the_checkpoint_moves_only_to_the_lowest_fully_processed_point() -> None:
    progress = ShardProgress()
    for sequence in (3, 5, 8, 9):
        progress.dispatch(sequence)
    progress.finish(5)
    progress.finish(9)
    assert progress.safe is None  # 3 is still running
    progress.finish(3)
    assert progress.safe == 5  # 8 is still running
    assert progress.outstanding == 2
    progress.finish(8)
    assert progress.safe == 9
    assert progress.outstanding == 0
    assert progress.seen(9)
    assert not progress.seen(10)
    with pytest.raises(ValueError, match="dispatched after"):
        progress.dispatch(9)


def test_backoff_doubles_up_to_its_cap() -> None:
    delays = [backoff_delay(n, 0.2, 1.0) for n in range(1, 7)]
    assert delays == [0.2, 0.4, 0.8, 1.0, 1.0, 1.0]
    assert backoff_delay(0, 0.2, 1.0) == 0.0
    assert backoff_delay(10_000, 0.2, 1.0) == 1.0  # no overflow for long streaks
    assert backoff_delay(3, 0.0, 1.0) == 0.0
