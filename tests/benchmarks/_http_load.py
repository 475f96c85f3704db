"""Closed-loop HTTP load for the browse benchmark, run in its own process.

``python -m tests.benchmarks._http_load URL CONCURRENCY WARMUP_SECONDS SECONDS``: CONCURRENCY
tasks on one ``httpx.AsyncClient`` (one keep-alive connection each) send GET URL back to back,
first for WARMUP_SECONDS (not counted), then for SECONDS. Prints one JSON object: completed
requests, errors (a status other than 200, or a failed request), the latencies of the
counted requests, the body sizes seen, and the CPU this process used (when it is near one
full core, the client and not the server set the pace).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx


async def run(url: str, concurrency: int, warmup: float, seconds: float) -> dict[str, object]:
    latencies: list[float] = []
    errors: list[str] = []
    sizes: set[int] = set()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:
        clock = time.perf_counter
        started = clock()
        measure_from = started + warmup
        stop_at = measure_from + seconds

        async def worker() -> None:
            while (now := clock()) < stop_at:
                try:
                    response = await client.get(url)
                    ok = response.status_code == 200
                    if not ok:
                        errors.append(f"HTTP {response.status_code}")
                    size = len(response.content)
                except httpx.HTTPError as exc:
                    ok, size = False, -1
                    errors.append(f"{type(exc).__name__}: {exc}")
                done = clock()
                if now >= measure_from and done <= stop_at and ok:
                    latencies.append(done - now)
                    sizes.add(size)

        cpu = time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        cpu = time.process_time() - cpu
        wall = clock() - started
    return {"requests": len(latencies), "seconds": seconds, "errors": len(errors),
            "error_samples": errors[:5], "latencies": latencies, "sizes": sorted(sizes),
            "client_cpu_share": cpu / wall}


def main() -> None:
    url, concurrency, warmup, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    print(json.dumps(asyncio.run(run(url, concurrency, warmup, seconds))))


if __name__ == "__main__":
    main()
