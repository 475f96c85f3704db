"""The real ``mercato`` command, run in subprocesses the way a new user runs it.

Every test works in its own temporary folder with an environment stripped of ``MERCATO_*``
variables (except the ones the test sets), and always kills whatever it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import CORE_HEAD

BIN_DIR = Path(sys.executable).parent
CONSOLE_SCRIPT = BIN_DIR / ("mercato.exe" if sys.platform == "win32" else "mercato")
MERCATO = [str(CONSOLE_SCRIPT)] if CONSOLE_SCRIPT.exists() else [sys.executable, "-m", "mercato"]

COMMAND_TIMEOUT = 30
STARTUP_TIMEOUT = 30
SHUTDOWN_TIMEOUT = 20


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment without any ``MERCATO_*`` variable, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MERCATO_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def mercato(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``mercato ARGS`` to completion and return its result (text stdout/stderr)."""
    return subprocess.run(
        [*MERCATO, *args], cwd=cwd, env=env if env is not None else clean_env(),
        capture_output=True, text=True, timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL,
    )


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def init_site(tmp_path: Path, name: str = "site") -> Path:
    result = mercato("init", name, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return tmp_path / name


def is_alive(process: psutil.Process) -> bool:
    """Running and not a zombie (an orphan whose exit nobody collected yet counts as gone)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_gone(processes: Sequence[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until every process is gone; return those still alive after ``timeout``."""
    deadline = time.monotonic() + timeout
    alive = [p for p in processes if is_alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in alive if is_alive(p)]
    return alive


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def nats_servers(processes: Sequence[psutil.Process]) -> list[psutil.Process]:
    found = []
    for process in processes:
        try:
            if "nats-server" in process.name():
                found.append(process)
        except psutil.NoSuchProcess:
            continue
    return found


class Server:
    """A long-running ``mercato`` process (``run``/``demo``) with its output in a file."""

    def __init__(self, args: Sequence[str], *, cwd: Path, port: int, log: Path,
                 env: dict[str, str] | None = None) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_path = log
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            [*MERCATO, *args], cwd=cwd, env=env if env is not None else clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        self.seen: list[psutil.Process] = []
        """Every descendant ever observed, so cleanup can kill orphans too."""

    @property
    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def children(self) -> list[psutil.Process]:
        found = descendants(self.process.pid)
        # psutil.Process equality is pid + creation time, so a reused pid is a new process.
        self.seen.extend(process for process in found if process not in self.seen)
        return found

    def wait_healthy(self, timeout: float = STARTUP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.children()
            if self.process.poll() is not None:
                pytest.fail(f"mercato exited with {self.process.returncode} before serving:\n"
                            f"{self.output[-3000:]}")
            try:
                if self.get("/health", timeout=1.0).status_code == 200:
                    self.children()
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        pytest.fail(f"GET /health did not answer within {timeout:.0f}s:\n{self.output[-3000:]}")

    def get(self, path: str, timeout: float = 10.0) -> httpx.Response:
        # trust_env=False: an HTTP(S)_PROXY in the environment must not intercept loopback.
        return httpx.get(f"{self.base_url}{path}", timeout=timeout, trust_env=False)

    def wait_for_output(self, text: str, count: int = 1, timeout: float = STARTUP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while self.output.count(text) < count:
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{text!r} not printed {count} times:\n{self.output[-3000:]}")
            self.children()
            time.sleep(0.2)

    def stop(self, sig: signal.Signals, timeout: float = SHUTDOWN_TIMEOUT) -> int:
        self.children()
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"mercato did not exit within {timeout:.0f}s of {sig.name}:\n"
                        f"{self.output[-3000:]}")

    def cleanup(self) -> None:
        """Kill the process and every descendant ever seen; never raises."""
        with contextlib.suppress(Exception):
            self.children()
        if self.process.poll() is None:
            self.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)
        for process in self.seen:
            try:
                if is_alive(process):
                    process.kill()
            except psutil.Error:
                pass
        self._log.close()


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.cleanup()


# ---------------------------------------------------------------------------
# mercato init
# ---------------------------------------------------------------------------


def test_init_writes_commented_config(tmp_path: Path) -> None:
    result = mercato("init", "shop", "--name", "My Shop", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    config = tmp_path / "shop" / "mercato.toml"
    assert config.is_file()
    assert str(Path("shop") / "mercato.toml") in result.stdout
    assert "mercato run" in result.stdout
    text = config.read_text()
    comments = [line for line in text.splitlines() if line.lstrip().startswith("#")]
    assert len(comments) >= 5, "mercato.toml should explain its keys in comments"
    parsed = tomllib.loads(text)
    assert parsed["site"]["name"] == "My Shop"
    for section in ("site", "database", "events", "server", "plugins"):
        assert section in parsed


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    site = init_site(tmp_path)
    config = site / "mercato.toml"
    config.write_text('[site]\nname = "mine"\n')

    result = mercato("init", "site", cwd=tmp_path)

    assert result.returncode != 0
    assert "already exists" in result.stderr
    assert "--force" in result.stderr
    assert "Traceback" not in result.stderr
    assert config.read_text() == '[site]\nname = "mine"\n', "the existing file must be kept"

    forced = mercato("init", "site", "--force", cwd=tmp_path)

    assert forced.returncode == 0, forced.stderr
    assert tomllib.loads(config.read_text())["site"]["name"] == "mercato"


def test_init_in_current_folder(tmp_path: Path) -> None:
    result = mercato("init", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "mercato.toml").is_file()
    assert mercato("plugins", cwd=tmp_path).returncode == 0


# ---------------------------------------------------------------------------
# Configuration errors
# ---------------------------------------------------------------------------


def test_misspelt_key_is_one_line_naming_key_and_file(tmp_path: Path) -> None:
    config = tmp_path / "mercato.toml"
    config.write_text('[site]\nnmae = "x"\n')

    result = mercato("plugins", cwd=tmp_path)

    assert result.returncode == 2
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert "site.nmae" in lines[0]
    assert str(config.resolve()) in lines[0]


def test_wrong_type_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "mercato.toml"
    config.write_text('[server]\nport = "abc"\n')

    result = mercato("plugins", cwd=tmp_path)

    assert result.returncode == 2
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert "server.port" in lines[0]
    assert str(config.resolve()) in lines[0]


def test_unknown_environment_override_names_the_variable(tmp_path: Path) -> None:
    init_site(tmp_path, ".")

    result = mercato("plugins", cwd=tmp_path, env=clean_env(MERCATO_SITE__NMAE="x"))

    assert result.returncode == 2
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert "MERCATO_SITE__NMAE" in lines[0]
    assert "site.nmae" in lines[0]


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "mercato.toml"
    config.write_text("[site\nname = \n")

    result = mercato("plugins", cwd=tmp_path)

    assert result.returncode == 2
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert str(config.resolve()) in lines[0]


# ---------------------------------------------------------------------------
# mercato plugins
# ---------------------------------------------------------------------------


def test_plugins_lists_builtins_with_their_hooks(tmp_path: Path) -> None:
    site = init_site(tmp_path)

    result = mercato("plugins", cwd=site)

    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert "health" in rows
    assert "pages" in rows
    assert "register_routes" in rows["health"]
    assert "register_routes" in rows["pages"]
    assert "built-in" in rows["health"]


def test_plugins_json_is_parseable(tmp_path: Path) -> None:
    site = init_site(tmp_path)

    result = mercato("plugins", "--json", cwd=site)

    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    by_id = {row["id"]: row for row in rows}
    assert {"health", "pages"} <= by_id.keys()
    for plugin_id in ("health", "pages"):
        assert by_id[plugin_id]["builtin"] is True
        assert "register_routes" in by_id[plugin_id]["hooks"]
        assert isinstance(by_id[plugin_id]["version"], str)


def test_site_option_points_at_another_folder(tmp_path: Path) -> None:
    site = init_site(tmp_path)
    (site / "mercato.toml").write_text('[site]\nnmae = "x"\n')

    result = mercato("--site", str(site), "plugins", cwd=tmp_path)

    assert result.returncode == 2
    assert "site.nmae" in result.stderr


# ---------------------------------------------------------------------------
# A third-party plugin that fails to import
# ---------------------------------------------------------------------------


def _broken_plugin_path(root: Path) -> Path:
    """A folder that, on PYTHONPATH, installs entry point ``mercato: broken = broken_plugin``."""
    folder = root / "pythonpath"
    folder.mkdir()
    (folder / "broken_plugin.py").write_text('raise RuntimeError("boom")\n')
    dist_info = folder / "broken_plugin-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: broken_plugin\nVersion: 0.1\n"
    )
    (dist_info / "entry_points.txt").write_text("[mercato]\nbroken = broken_plugin\n")
    return folder


def _with_pythonpath(folder: Path) -> dict[str, str]:
    existing = os.environ.get("PYTHONPATH", "")
    return clean_env(PYTHONPATH=os.pathsep.join(p for p in (str(folder), existing) if p))


def test_broken_plugin_stops_startup_naming_it(tmp_path: Path) -> None:
    site = init_site(tmp_path)
    env = _with_pythonpath(_broken_plugin_path(tmp_path))

    result = mercato("plugins", cwd=site, env=env)

    assert result.returncode != 0
    assert "`broken`" in result.stderr
    assert "boom" in result.stderr
    assert "disabled" in result.stderr, "the message should say how to switch the plugin off"
    assert "Traceback" not in result.stderr


def test_disabled_broken_plugin_is_not_loaded(tmp_path: Path) -> None:
    site = init_site(tmp_path)
    (site / "mercato.toml").write_text('[plugins]\ndisabled = ["broken"]\n')
    env = _with_pythonpath(_broken_plugin_path(tmp_path))

    result = mercato("plugins", cwd=site, env=env)

    assert result.returncode == 0, result.stderr
    ids = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    assert "health" in ids
    assert "pages" in ids
    assert "broken" not in ids
    assert "disabled: broken" in result.stdout


# ---------------------------------------------------------------------------
# mercato db
# ---------------------------------------------------------------------------


def test_db_upgrade_creates_sqlite_database(tmp_path: Path) -> None:
    site = init_site(tmp_path)
    database = site / "data" / "mercato.db"

    before = mercato("db", "current", cwd=site)
    assert before.returncode == 0, before.stderr
    assert "mercato db upgrade" in before.stdout

    upgraded = mercato("db", "upgrade", cwd=site)

    assert upgraded.returncode == 0, upgraded.stderr
    assert database.is_file()
    assert database.stat().st_size > 0
    assert CORE_HEAD in upgraded.stdout

    current = mercato("db", "current", cwd=site)

    assert current.returncode == 0, current.stderr
    assert CORE_HEAD in current.stdout
    assert "head" in current.stdout

    again = mercato("db", "upgrade", cwd=site)
    assert again.returncode == 0, again.stderr
    assert CORE_HEAD in again.stdout


# ---------------------------------------------------------------------------
# mercato worker
# ---------------------------------------------------------------------------


def test_worker_without_nats_url_says_what_to_set(tmp_path: Path) -> None:
    site = init_site(tmp_path)

    result = mercato("worker", cwd=site)

    assert result.returncode == 2
    assert "[events] nats_url" in result.stderr
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------------------
# mercato demo / run
# ---------------------------------------------------------------------------


DEMO_FOLDER = re.compile(r"Demo site in (.+?) \(removed on exit\)")


@pytest.mark.timeout(60)
def test_demo_serves_and_cleans_up_on_ctrl_c(tmp_path: Path, servers: list[Server]) -> None:
    port = free_port()
    temp = tmp_path / "tmp"  # the demo's temporary folder goes here, not in the shared /tmp
    temp.mkdir()
    server = Server(["demo", "--port", str(port)], cwd=tmp_path, port=port,
                    log=tmp_path / "demo.log", env=clean_env(TMPDIR=str(temp)))
    servers.append(server)
    demo_folder: Path | None = None
    try:
        server.wait_healthy()
        match = DEMO_FOLDER.search(server.output)
        assert match, f"`Demo site in <path>` not printed:\n{server.output[-3000:]}"
        demo_folder = Path(match.group(1))
        assert demo_folder.is_dir()
        assert demo_folder.parent == temp
        assert (demo_folder / "mercato.toml").is_file()

        home = server.get("/")
        assert home.status_code == 200
        assert home.headers["content-type"].startswith("text/html")
        assert "<html" in home.text.lower()

        health = server.get("/health")
        assert health.status_code == 200
        assert health.json() == {"status": "ok"}

        ready = server.get("/ready")
        assert ready.status_code == 200, ready.text
        assert ready.headers["content-type"].startswith("application/json")
        assert ready.json()["status"] == "ready"

        schema = server.get("/schema/openapi.json")
        assert schema.status_code == 200
        assert "/health" in schema.json()["paths"]

        nats = nats_servers(server.children())
        assert len(nats) == 1, f"expected one embedded nats-server, found {nats}"

        returncode = server.stop(signal.SIGINT)

        assert returncode == 0, server.output[-3000:]
        assert wait_gone(nats, 5) == [], "the embedded nats-server outlived mercato demo"
        assert not demo_folder.exists(), f"the demo folder {demo_folder} was not removed"
        assert "Traceback" not in server.output, server.output[-3000:]
    finally:
        if demo_folder is not None:
            shutil.rmtree(demo_folder, ignore_errors=True)


@pytest.mark.timeout(60)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_run_crash_takes_nats_server_down(tmp_path: Path, servers: list[Server]) -> None:
    site = init_site(tmp_path)
    port = free_port()
    server = Server(["run", "--port", str(port)], cwd=site, port=port, log=tmp_path / "run.log")
    servers.append(server)

    server.wait_healthy()
    assert server.get("/").status_code == 200
    ready = server.get("/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"
    assert (site / "data" / "mercato.db").is_file(), "`mercato run` migrates SQLite first"
    nats = nats_servers(server.children())
    assert len(nats) == 1, f"expected one embedded nats-server, found {nats}"

    server.process.kill()  # SIGKILL: no finally, no atexit
    server.process.wait(SHUTDOWN_TIMEOUT)

    assert wait_gone(nats, 5) == [], "the embedded nats-server outlived a killed mercato run"


@pytest.mark.timeout(60)
def test_run_with_two_workers_shares_one_nats_server(tmp_path: Path, servers: list[Server]) -> None:
    site = init_site(tmp_path)
    port = free_port()
    server = Server(["run", "--workers", "2", "--port", str(port)], cwd=site, port=port,
                    log=tmp_path / "run.log")
    servers.append(server)

    server.wait_healthy()
    server.wait_for_output("Application startup complete", count=2)  # both workers are up
    for _ in range(6):  # several requests, so both workers are likely to answer one
        ready = server.get("/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "ready"

    tree = server.children()
    nats = nats_servers(tree)
    assert len(nats) == 1, f"expected one nats-server for all workers, found {nats}"
    workers = [p for p in tree if p not in nats and _is_python(p)]
    assert len(workers) >= 2, f"expected two worker processes, found {tree}"

    returncode = server.stop(signal.SIGINT)

    assert returncode == 0, server.output[-3000:]
    assert wait_gone(nats, 5) == [], "the embedded nats-server outlived mercato run"
    leftovers = wait_gone(server.seen, 5)
    assert leftovers == [], f"processes left after Ctrl-C: {leftovers}"


def _is_python(process: psutil.Process) -> bool:
    try:
        return "python" in process.name().lower() or "python" in " ".join(process.cmdline()).lower()
    except psutil.Error:
        return False


@pytest.mark.timeout(60)
def test_run_stops_cleanly_on_sigterm(tmp_path: Path, servers: list[Server]) -> None:
    """systemd and container runtimes stop services with SIGTERM."""
    site = init_site(tmp_path)
    port = free_port()
    server = Server(["run", "--port", str(port)], cwd=site, port=port, log=tmp_path / "run.log")
    servers.append(server)
    server.wait_healthy()
    nats = nats_servers(server.children())
    assert len(nats) == 1

    returncode = server.stop(signal.SIGTERM)

    assert returncode == 0, server.output[-3000:]
    assert "embedded nats-server stopped" in server.output
    assert wait_gone(nats, 5) == []


def mercato_with_input(*args: str, cwd: Path, text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MERCATO, *args], cwd=cwd, env=clean_env(), capture_output=True, text=True,
                          timeout=COMMAND_TIMEOUT, input=text)


def test_users_create_admin_then_promote_and_refuse_weak_passwords(tmp_path: Path) -> None:
    site = init_site(tmp_path)
    weak = mercato_with_input("users", "create-admin", "--email", "root@example.com", "--name", "Root",
                              "--password-stdin", cwd=site, text="password\n")
    assert weak.returncode == 1
    assert error_lines(weak) == ["error: password: This is a top-10 common password. Add another word or "
                                 "two. Uncommon words are better."]

    created = mercato_with_input("users", "create", "--email", "Dev@Example.com", "--name", "Dev",
                                 "--role", "developer", "--password-stdin", cwd=site,
                                 text="sturdy lamp harbour 9\n")
    assert created.returncode == 0, created.stderr
    assert "Created Dev@example.com (developer)." in created.stdout

    again = mercato_with_input("users", "create", "--email", "dev@example.com", "--name", "Dev",
                               "--password-stdin", cwd=site, text="sturdy lamp harbour 9\n")
    assert again.returncode == 1
    assert "already uses this e-mail address" in again.stderr

    promoted = mercato_with_input("users", "create-admin", "--email", "dev@example.com", "--name", "Dev",
                                  "--password-stdin", cwd=site, text="another sturdy lamp 10\n")
    assert promoted.returncode == 0, promoted.stderr
    assert "Dev@example.com is now an administrator" in promoted.stdout
