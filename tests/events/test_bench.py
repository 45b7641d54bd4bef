"""The stream benchmark runs end to end and reports every number (small sizes here)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.events.conftest import NATS_URL, nats_backend

from reelscale.events.bench import stream_async

pytestmark = pytest.mark.asyncio


@pytest.mark.parametrize("backend_name", ["embedded", "nats"])
async def test_the_stream_benchmark_reports_its_numbers(backend_name: str, tmp_path: Path) -> None:
    if backend_name == "nats":
        async with nats_backend():  # skips (or fails under CI) without a server
            pass
    result = await stream_async(
        backend_name,
        url=NATS_URL,
        directory=tmp_path,
        events=4000,
        batch=200,
        rate=1000,
        latency_s=0.5,
        warmup_s=0.1,
        one_core=False,
    )
    assert set(result) == {"put_events_per_s", "e2e_ms_p50", "e2e_ms_p99", "consume_events_per_s"}
    assert result["put_events_per_s"] > 0
    assert result["consume_events_per_s"] > 0
    assert 0 < result["e2e_ms_p50"] <= result["e2e_ms_p99"]
