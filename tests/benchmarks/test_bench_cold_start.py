"""Cold start: ``mercato run`` in a folder fresh from ``mercato init`` → first 200 on /health.

Each run gets a fresh folder (so SQLite migrations and the embedded nats-server start from
nothing), a free port, and is stopped with SIGINT (Ctrl-C) afterwards; the test checks it
exits with 0 and leaves no child (the embedded nats-server) behind. (SIGINT, not SIGTERM:
uvicorn re-raises a captured SIGTERM after its shutdown, which kills the process before
``serve()``'s ``finally`` stops the embedded nats-server; see the report of this benchmark.)

Baseline: a bare Litestar app under uvicorn in a fresh interpreter, start → first 200, so
the ratio is what mercato adds (plugins, migrations, NATS, JetStream stream, consumers).

On PostgreSQL (``MERCATO_TEST_DATABASE_URL``) each run gets a fresh empty database and
``--migrate``; with ``MERCATO_TEST_NATS_URL`` the site uses that server and a private
stream instead of the embedded one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psutil
import pytest

from tests.benchmarks._bench import median, ms, report
from tests.conftest import TEST_DATABASE_URL, TEST_NATS_URL, Databases, _delete_streams

RUNS = 3
TARGET_SECONDS = 3.0
READY_TIMEOUT = 60.0
MERCATO = str(Path(sys.executable).with_name("mercato"))

BASELINE_APP = """
import sys
import uvicorn
from litestar import Litestar, get

@get("/health", sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}

uvicorn.run(Litestar([health]), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_environ() -> dict[str, str]:
    """The inherited environment without any MERCATO_* setting."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MERCATO_")}


class Started:
    def __init__(self, seconds: float, stop_seconds: float) -> None:
        self.seconds = seconds
        self.stop_seconds = stop_seconds


def time_to_first_200(args: list[str], *, cwd: Path, env: dict[str, str], port: int,
                      log: Path) -> Started:
    """Start ``args``; poll /health until 200; stop with SIGINT and check a clean exit.

    Blocking on purpose (run it in a thread): nothing else should compete for the clock.
    """
    url = f"http://127.0.0.1:{port}/health"
    with log.open("wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    try:
        with httpx.Client(timeout=1.0) as client:
            while True:
                try:
                    if client.get(url).status_code == 200:
                        seconds = time.perf_counter() - started
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None:
                    raise AssertionError(
                        f"{args[0]} exited with {process.returncode} before serving:\n"
                        f"{log.read_text(errors='replace')[-3000:]}"
                    )
                if time.perf_counter() - started > READY_TIMEOUT:
                    raise AssertionError(f"no 200 from {url} within {READY_TIMEOUT:.0f}s")
                time.sleep(0.005)
        children = psutil.Process(process.pid).children(recursive=True)
        stop_started = time.perf_counter()
        process.send_signal(signal.SIGINT)
        returncode = process.wait(30)
        stop_seconds = time.perf_counter() - stop_started
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert returncode == 0, f"exit code {returncode}:\n{log.read_text(errors='replace')[-3000:]}"
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not alive, f"left behind: {[p.pid for p in alive]}"
    return Started(seconds, stop_seconds)


def init_site(folder: Path) -> None:
    subprocess.run([MERCATO, "init", str(folder)], check=True, capture_output=True,
                   env=clean_environ())
    assert (folder / "mercato.toml").is_file()


@pytest.mark.timeout(300)
async def test_cold_start_of_mercato_run(tmp_path: Path, databases: Databases) -> None:
    # Mercato and baseline runs alternate so that load from elsewhere on the machine
    # affects both alike.
    mercato_runs: list[Started] = []
    baseline_runs: list[Started] = []
    streams: set[str] = set()
    try:
        for run in range(RUNS):
            folder = tmp_path / f"site{run}"
            await asyncio.to_thread(init_site, folder)
            env = clean_environ()
            args = [MERCATO, "run", "--port", str(port := free_port())]
            if TEST_DATABASE_URL:
                env["MERCATO_DATABASE__URL"] = await databases.create_empty()
                args.append("--migrate")
            if TEST_NATS_URL:
                stream = f"BENCH_COLD_{uuid.uuid4().hex[:8].upper()}"
                streams.add(stream)
                env["MERCATO_EVENTS__NATS_URL"] = TEST_NATS_URL
                env["MERCATO_EVENTS__STREAM"] = stream
                env["MERCATO_EVENTS__SUBJECT_PREFIX"] = stream.lower()
            mercato_runs.append(await asyncio.to_thread(
                time_to_first_200, args, cwd=folder, env=env, port=port,
                log=tmp_path / f"mercato{run}.log",
            ))
            if not TEST_DATABASE_URL:
                assert await asyncio.to_thread((folder / "data" / "mercato.db").is_file)

            port = free_port()
            baseline_runs.append(await asyncio.to_thread(
                time_to_first_200, [sys.executable, "-c", BASELINE_APP, str(port)],
                cwd=tmp_path, env=clean_environ(), port=port,
                log=tmp_path / f"baseline{run}.log",
            ))
    finally:
        if streams:
            await _delete_streams(TEST_NATS_URL, streams)

    ours = [r.seconds for r in mercato_runs]
    base = [r.seconds for r in baseline_runs]
    report("cold start: `mercato run` → first 200 on /health", [
        f"mercato run:  min {ms(min(ours))}, median {ms(median(ours))}   "
        f"(runs: {', '.join(ms(s) for s in ours)})",
        f"baseline bare litestar+uvicorn:  min {ms(min(base))}, median {ms(median(base))}",
        f"ratio (mercato / baseline): min {min(ours) / min(base):.2f}x, "
        f"median {median(ours) / median(base):.2f}x   "
        f"overhead: median {ms(median(ours) - median(base))}",
        f"clean stop (SIGINT → exit 0): mercato median "
        f"{ms(median([r.stop_seconds for r in mercato_runs]))}, baseline median "
        f"{ms(median([r.stop_seconds for r in baseline_runs]))}",
        f"target: < {TARGET_SECONDS:.0f} s  → "
        f"{'met' if median(ours) < TARGET_SECONDS else 'NOT met'} (median)",
    ])
