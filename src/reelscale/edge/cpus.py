"""Which CPUs a benchmark gives to what it measures and which to the load it offers."""

from __future__ import annotations

import os


def split_cpus() -> tuple[int, frozenset[int]] | None:
    """The first CPU this process may use for the server under test, the rest for the load
    generator; None with a single CPU (nothing to split).

    A generator sharing the server's CPU takes time the server would have spent answering,
    and that time is then charged to the server."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2:
        return None
    return cpus[0], frozenset(cpus[1:])
