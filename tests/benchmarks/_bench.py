"""Helpers shared by the benchmarks: percentiles, labels and printing.

Benchmarks never assert on timings; they print measurements next to a baseline measured in
the same run, and assert only that the work was done correctly.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Sequence

from tests.conftest import TEST_DATABASE_URL, TEST_NATS_URL


def backend_label() -> str:
    """Which database and NATS the run uses, for the printed report."""
    database = "PostgreSQL" if TEST_DATABASE_URL else "SQLite"
    nats = f"NATS {TEST_NATS_URL}" if TEST_NATS_URL else "embedded NATS"
    return f"{database} + {nats}"


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0 to 100) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def report(title: str, lines: list[str]) -> None:
    """Print a block that stands out in ``pytest -s`` output."""
    bar = "=" * 78
    load = os.getloadavg()[0]
    print(f"\n{bar}\n{title}  [{backend_label()}; load {load:.1f} on {os.cpu_count()} CPUs]")
    for line in lines:
        print(f"  {line}")
    print(bar)
