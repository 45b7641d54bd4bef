"""Windows: which windows an event falls in, when the watermark closes them, what is kept."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelscale.analytics.windows import Hopping, Tumbling, Watermark, Window, Windowed

S = 1000
M = 60 * S


def test_tumbling_puts_each_time_in_one_epoch_aligned_window() -> None:
    minute = Tumbling(M)
    assert minute.assign(0) == [Window(0, M)]
    assert minute.assign(M - 1) == [Window(0, M)]
    assert minute.assign(M) == [Window(M, 2 * M)]
    assert minute.assign(125 * S) == [Window(2 * M, 3 * M)]
    assert 125 * S in Window(2 * M, 3 * M)
    assert 3 * M not in Window(2 * M, 3 * M)  # half open


def test_hopping_puts_each_time_in_size_over_hop_windows_oldest_first() -> None:
    five = Hopping(5 * M, M)
    windows = five.assign(7 * M + 5 * S)
    assert windows == [Window(s * M, s * M + 5 * M) for s in range(3, 8)]
    assert all(7 * M + 5 * S in w for w in windows)
    # On a boundary the window starting there is included and the one ending there is not.
    assert five.assign(5 * M)[0] == Window(M, 6 * M)
    assert five.assign(5 * M)[-1] == Window(5 * M, 10 * M)


@given(
    t=st.integers(min_value=0, max_value=10**13),
    hop=st.sampled_from([10 * S, 30 * S, M]),
    hops=st.integers(min_value=1, max_value=12),
)
def test_hopping_assigns_exactly_the_windows_that_contain_the_time(
    t: int, hop: int, hops: int
) -> None:
    windows = Hopping(hop * hops, hop)
    assigned = windows.assign(t)
    assert len(assigned) == hops
    for window in assigned:
        assert window.start_ms % hop == 0
        assert window.end_ms - window.start_ms == hop * hops
        assert t in window
    # The neighbours just outside do not contain it.
    assert t not in Window(assigned[0].start_ms - hop, assigned[0].end_ms - hop)
    assert t not in Window(assigned[-1].start_ms + hop, assigned[-1].end_ms + hop)


def test_bad_window_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="whole number of hops"):
        Hopping(5 * M, 2 * M)
    with pytest.raises(ValueError, match="positive"):
        Tumbling(0)
    with pytest.raises(ValueError, match="positive"):
        Hopping(M, -1)


def test_ending_after_is_the_latest_full_window_containing_the_time() -> None:
    titles = Hopping(5 * M, 30 * S)
    window = titles.ending_after(10 * M + 12 * S)
    assert window == Window(10 * M + 30 * S - 5 * M, 10 * M + 30 * S)
    assert 10 * M + 12 * S in window
    assert titles.ending_after(10 * M) == Window(10 * M + 30 * S - 5 * M, 10 * M + 30 * S)


def test_ends_walks_hop_boundaries_inclusively() -> None:
    assert [w.end_ms for w in Tumbling(M).ends(M + 1, 4 * M)] == [2 * M, 3 * M, 4 * M]
    assert list(Tumbling(M).ends(3 * M, 2 * M)) == []


def test_watermark_trails_the_slowest_active_source_by_the_lateness() -> None:
    mark = Watermark(allowed_lateness_ms=30 * S, idle_ms=20 * S)
    assert mark.advance(0, 0) is None  # nothing seen yet
    mark.observe("shard-0", 10 * M, now_ms=0)
    mark.observe("shard-1", 4 * M, now_ms=0)  # a shard whose reader is behind
    assert mark.advance(0, 0) == 4 * M - 30 * S
    # Its events are not late, however far ahead the other shard is.
    assert not mark.is_late(4 * M - 10 * S)
    assert mark.is_late(4 * M - 31 * S)
    mark.observe("shard-1", 9 * M, now_ms=1 * S)
    assert mark.advance(1 * S, 0) == 9 * M - 30 * S
    assert mark.newest_ms == 10 * M


def test_an_idle_source_stops_holding_the_watermark_back() -> None:
    mark = Watermark(allowed_lateness_ms=30 * S, idle_ms=20 * S)
    mark.observe("busy", 10 * M, now_ms=0)
    mark.observe("quiet", 2 * M, now_ms=0)
    assert mark.advance(19 * S, 0) == 2 * M - 30 * S
    mark.observe("busy", 10 * M + 25 * S, now_ms=25 * S)
    assert mark.advance(25 * S, 0) == 10 * M - 5 * S  # quiet has been silent 25 s > 20 s


def test_with_every_source_idle_the_watermark_follows_the_wall_clock() -> None:
    mark = Watermark(allowed_lateness_ms=30 * S, idle_ms=20 * S)
    mark.observe("only", 10 * M, now_ms=0)
    assert mark.advance(1 * S, 10 * M) == 10 * M - 30 * S
    assert mark.advance(60 * S, 12 * M) == 12 * M - 30 * S
    assert mark.horizon_ms == 12 * M - 30 * S  # ahead of the newest event now


def test_the_watermark_never_moves_back() -> None:
    mark = Watermark(allowed_lateness_ms=0, idle_ms=10 * S)
    mark.observe("a", 5 * M, now_ms=0)
    assert mark.advance(0, 0) == 5 * M
    mark.observe("b", M, now_ms=1)  # a new source far behind
    assert mark.advance(1, 0) == 5 * M


def test_long_idle_sources_are_forgotten() -> None:
    mark = Watermark(allowed_lateness_ms=0, idle_ms=S)
    mark.observe("old-shard", M, now_ms=0)
    mark.advance(61 * S, 2 * M)
    mark.observe("new-shard", 3 * M, now_ms=62 * S)
    mark.advance(62 * S, 3 * M)
    assert set(mark._newest) == {"new-shard"}


def _counter(windows: Hopping, keep_ms: int = 10 * M) -> Windowed[list[int], int]:
    return Windowed(windows, new=lambda: [0], finish=lambda s: s[0], keep_ms=keep_ms)


def test_windowed_results_are_provisional_until_the_watermark_passes_the_end() -> None:
    counts = _counter(Tumbling(M))
    for t in (5 * S, 50 * S, 70 * S):
        for state in counts.states(t):
            state[0] += 1
    first, second = Window(0, M), Window(M, 2 * M)
    assert counts.get(first) == (first, 2, False)
    counts.close(M - 1)
    assert counts.get(first).final is False
    counts.close(M)
    assert counts.get(first) == (first, 2, True)
    assert counts.get(second) == (second, 1, False)
    assert (counts.open_windows, counts.final_windows) == (1, 1)


def test_windowed_series_fills_gaps_and_marks_passed_windows_final() -> None:
    counts = _counter(Tumbling(M))
    for state in counts.states(3 * M + 1):
        state[0] += 4
    counts.close(2 * M)
    series = counts.series(M, 4 * M, watermark_ms=2 * M)
    assert [(r.window.end_ms, r.result, r.final) for r in series] == [
        (M, 0, True),
        (2 * M, 0, True),
        (3 * M, 0, False),
        (4 * M, 4, False),
    ]


def test_hopping_windows_each_count_the_event() -> None:
    counts = _counter(Hopping(5 * M, M))
    for state in counts.states(7 * M + 1):
        state[0] += 1
    ends = [r.window.end_ms for r in counts.series(7 * M, 13 * M, None) if r.result]
    assert ends == [8 * M, 9 * M, 10 * M, 11 * M, 12 * M]


def test_final_windows_are_dropped_after_the_retention() -> None:
    counts = _counter(Tumbling(M), keep_ms=5 * M)
    for minute in range(100):
        for state in counts.states(minute * M):
            state[0] += 1
        counts.close(minute * M)
    # Bounded: the retention's worth of final windows and the one still open.
    assert counts.final_windows <= 6
    assert counts.open_windows == 1
    assert counts.get(Window(50 * M, 51 * M)).result == 0  # forgotten
    assert counts.get(Window(97 * M, 98 * M)) == (Window(97 * M, 98 * M), 1, True)
