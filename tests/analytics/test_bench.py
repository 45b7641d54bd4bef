"""The benchmark's own check: it measures a complete ingest (nothing dropped as late)."""

from __future__ import annotations

from reelscale.analytics.bench import ingest


def test_the_bench_ingests_every_record_and_reports_its_numbers() -> None:
    result = ingest(sessions=40, minutes=3, snapshots=3)
    metrics_reports = 3 * 60 // 10
    assert result["applied"] == result["records"] - metrics_reports
    assert result["late"] == 0
    assert result["ingest_events_per_s"] > 0
    assert 0 < result["snapshot_ms_p50"] <= result["snapshot_ms_p99"]
    assert result["snapshot_bytes"] > 1000
