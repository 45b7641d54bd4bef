"""`reelscale bench functions`: the report's shape and its accounting, never its timings.

The latency target belongs to the benchmark's output (`met`); here the numbers only have
to be there and make sense, on a short, slow run against the embedded log.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from reelscale import cli
from reelscale.functions import bench

LATENCY_KEYS = ("e2e_ms_p50", "e2e_ms_p90", "e2e_ms_p99", "e2e_ms_max")


async def test_a_short_run_delivers_every_event_and_reports_its_latency(tmp_path: Path) -> None:
    result = await bench.functions_bench_async(
        "embedded",
        rate=500,
        seconds=1,
        warmup_s=0.2,
        throughput_events=2000,
        directory=tmp_path,
    )
    report: dict[str, Any] = json.loads(json.dumps(result))  # plain JSON, no NaN
    assert report["backend"] == "embedded"
    assert report["rate"] == 500
    assert report["sent"] == 600  # warm-up included: every event put must come back
    assert report["delivered"] == report["sent"]
    assert report["put_errors"] == 0
    assert report["measured"] == 500  # the warm-up is not counted
    values = [report[key] for key in LATENCY_KEYS]
    assert all(isinstance(v, float) and math.isfinite(v) and v > 0 for v in values), values
    assert values == sorted(values)  # p50 <= p90 <= p99 <= max
    assert report["put_ms_p50"] > 0
    assert report["cold_starts"] >= 1
    assert report["cold_starts"] + report["warm_starts"] == report["invocations"]
    assert report["errors"] == 0
    assert report["function_events"] == 2000
    assert report["function_events_per_s"] > 0
    assert report["target_p99_ms"] == bench.TARGET_P99_MS
    assert isinstance(report["met"], bool)
    assert list(tmp_path.iterdir()) == []  # the store's temporary directory is gone


async def test_an_unknown_backend_or_a_non_nats_url_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown backend"):
        await bench.functions_bench_async("kafka", rate=10, seconds=0.1)
    with pytest.raises(ValueError, match="nats://"):
        await bench.functions_bench_async("nats", nats_url="embedded", rate=10, seconds=0.1)


def test_the_command_passes_its_options_and_prints_json_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []

    def fake(backend: str, **options: Any) -> dict[str, Any]:
        calls.append({"backend": backend, **options})
        return {"backend": backend, "met": True}

    monkeypatch.setattr(bench, "functions_bench", fake)
    monkeypatch.setenv("REELSCALE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("REELSCALE_STREAM_URL", raising=False)
    runner = CliRunner()
    args = ["bench", "functions", "--backend", "nats", "--rate", "700", "--seconds", "2"]
    done = runner.invoke(cli.app, [*args, "--nats-url", "nats://10.0.0.1:4222"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"backend": "nats", "met": True}
    assert calls[0]["rate"] == 700
    assert calls[0]["seconds"] == 2.0
    assert calls[0]["nats_url"] == "nats://10.0.0.1:4222"

    done = runner.invoke(cli.app, ["bench", "functions"])
    assert done.exit_code == 0, done.output
    assert (calls[1]["backend"], calls[1]["nats_url"]) == ("embedded", None)

    done = runner.invoke(cli.app, ["bench", "functions", "--backend", "kafka"])
    assert done.exit_code == 2
    assert len(calls) == 2
