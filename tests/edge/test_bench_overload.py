"""`reelscale bench overload --quick`: real processes, real sockets, the report's shape.

The numbers themselves are the benchmark's business (performance targets are not timed
tests); what is checked here is that every part of the report is there, and one property
that holds on any machine: at the highest multiplier, shedding keeps CRITICAL answering
while the unshedded origin's queue times everything out.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from reelscale.edge.bench_overload import CLASSES, MIX, MULTIPLIERS
from reelscale.edge.priority import Classifier


def test_every_kind_in_the_mix_is_classified_as_its_label() -> None:
    classifier = Classifier()
    for kind in MIX:
        priority = classifier.classify(
            method=kind.method, path=kind.path, headers=dict(kind.headers)
        )
        assert priority is not None
        assert priority.label == kind.label, kind
    weights = {label: sum(k.weight for k in MIX if k.label == label) for label in CLASSES}
    assert weights == pytest.approx(
        {"critical": 0.2, "degraded": 0.3, "best_effort": 0.2, "bulk": 0.3}
    )


@pytest.mark.slow
def test_quick_overload_bench_reports_every_run_and_shedding_protects_critical() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "reelscale", "bench", "overload", "--quick"],
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert "cost units" in report["capacity_definition"]
    assert report["capacity_rps"] > 0
    assert report["critical_p99_unloaded_ms"] > 0
    for mode in ("shedding_on", "shedding_off"):
        assert set(report[mode]) == {f"{m}x" for m in MULTIPLIERS}
        for run in report[mode].values():
            for key in ("critical_availability", "critical_p99_ms", "goodput_ratio"):
                assert key in run
            assert set(run["classes"]) == set(CLASSES)
            for numbers in run["classes"].values():
                assert numbers["offered"] > 0
                assert {"availability", "p50_ms", "p99_ms", "reject_p99_ms"} <= set(numbers)
    for target in report["targets"].values():
        assert set(target) == {"value", "bound", "met"}
    top = f"{MULTIPLIERS[-1]}x"
    on = report["shedding_on"][top]
    off = report["shedding_off"][top]
    assert on["critical_availability"] > off["critical_availability"]
    # Shedding refuses the lower classes quickly instead of letting them time out.
    assert on["classes"]["bulk"]["rejected"] > 0
    assert sum(c["timed_out"] for c in off["classes"].values()) > 0


def test_the_first_cpu_is_the_servers_and_the_rest_the_generators() -> None:
    import os

    from reelscale.edge.cpus import split_cpus

    cpus = sorted(os.sched_getaffinity(0))
    split = split_cpus()
    if len(cpus) < 2:
        assert split is None
    else:
        assert split == (cpus[0], frozenset(cpus[1:]))
