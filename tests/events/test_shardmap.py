"""Shard maps: stable routing, even splits, parents across epochs."""

from __future__ import annotations

import itertools
from datetime import datetime
from pathlib import Path

import pytest

from reelscale.core.errors import BadRequest, NotFound
from reelscale.events.records import StartAt, StartPosition
from reelscale.events.shardmap import HASH_SPACE, ShardMap, ShardRouter, key_hash


def test_ranges_cover_the_hash_space_without_gaps() -> None:
    shard_map = ShardMap.initial(3)
    shards = shard_map.open_shards
    assert shards[0].hash_start == 0
    assert shards[-1].hash_end == HASH_SPACE
    assert all(a.hash_end == b.hash_start for a, b in itertools.pairwise(shards))


def test_a_child_has_exactly_the_parents_its_range_overlaps() -> None:
    doubled = ShardMap.initial(2).reshard(4)
    assert [s.parents for s in doubled.open_shards] == [(0,), (0,), (1,), (1,)]
    uneven = ShardMap.initial(2).reshard(3)
    assert [s.parents for s in uneven.open_shards] == [(0,), (0, 1), (1,)]
    assert [s.id for s in uneven.closed_shards] == [0, 1]
    assert not uneven.is_open(0)
    assert uneven.is_open(3)


def test_a_map_is_rebuilt_from_its_epoch_sizes() -> None:
    shard_map = ShardMap.initial(2).reshard(5).reshard(3)
    assert shard_map.epoch_sizes == [2, 5, 3]
    assert ShardMap.from_epoch_sizes([2, 5, 3]) == shard_map
    with pytest.raises(NotFound):
        shard_map.get(99)


def test_every_key_routes_to_the_open_shard_holding_its_hash() -> None:
    shard_map = ShardMap.initial(2).reshard(7)
    router = shard_map.router()
    for n in range(500):
        key = f"member-{n}"
        shard = shard_map.get(router.shard_for(key))
        assert shard.hash_start <= key_hash(key) < shard.hash_end
        assert shard.epoch == shard_map.epoch


def test_the_router_cache_stays_bounded() -> None:
    router = ShardRouter(ShardMap.initial(4).open_shards)
    router._CACHE_LIMIT = 10
    for n in range(100):
        router.shard_for(str(n))
    assert len(router._cache) <= 10


def test_start_positions_check_their_arguments() -> None:
    assert StartAt.at_sequence(5).position is StartPosition.AT_SEQUENCE
    with pytest.raises(BadRequest):
        StartAt.at_sequence(0)
    with pytest.raises(BadRequest):
        StartAt.at_timestamp(datetime(2026, 1, 1))  # naive


def test_the_store_is_picked_by_url(tmp_path: Path) -> None:
    from reelscale.events.backends import event_store_from_url
    from reelscale.events.embedded import EmbeddedEventStore
    from reelscale.events.nats import NatsEventStore

    default = event_store_from_url(None, data_dir=tmp_path)
    assert isinstance(default, EmbeddedEventStore)
    assert default.directory == tmp_path / "events"
    elsewhere = event_store_from_url("embedded:///srv/events", data_dir=tmp_path)
    assert isinstance(elsewhere, EmbeddedEventStore)
    assert elsewhere.directory == Path("/srv/events")
    nats = event_store_from_url("nats://127.0.0.1:4222", data_dir=tmp_path)
    assert isinstance(nats, NatsEventStore)
    with pytest.raises(ValueError, match="unknown"):
        event_store_from_url("kafka://x", data_dir=tmp_path)
    with pytest.raises(ValueError, match="directory"):
        event_store_from_url("embedded://", data_dir=tmp_path)
