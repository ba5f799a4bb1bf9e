"""Shared helpers: stores of every built-in backend and ways to damage them."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

# The built-in backends, each with the path it takes (memory keeps nothing on disk).
BACKENDS = ["ndjson", "rotating", "segmented", "memory"]
ON_DISK = ["ndjson", "rotating", "segmented"]


def data_path(tmp_path: Path, backend: str) -> Path | None:
    if backend == "memory":
        return None
    return tmp_path / ("events.ndjson" if backend == "ndjson" else "store")


def record(i: int, kind: str = "event", system_id: str = "local", **extra) -> dict:
    return {"kind": kind, "system_id": system_id, "timestamp": 1_700_000_000.0 + i, "seq": i, **extra}


def line(i: int, **kw) -> str:
    return json.dumps(record(i, **kw), separators=(",", ":"))


def data_files(path: Path) -> list[Path]:
    """Every file holding records (not manifests, checksums or locks), oldest first."""
    if path.is_file():
        return [path]
    names = [
        p
        for p in sorted(path.rglob("*"))
        if p.is_file()
        and not p.name.startswith(".")
        and not p.name.endswith((".json", ".sums", ".lock", ".quire-lock"))
        and "manifest" not in p.name
    ]
    return sorted(names, key=lambda p: (p.stat().st_mtime_ns, p.name))


def snapshot(path: Path) -> dict[str, bytes]:
    """Every file's bytes, to prove an operation changed nothing."""
    if path.is_file():
        return {path.name: path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def tear_tail(path: Path) -> Path:
    """Appends half a record to the newest data file, as a crash mid-write leaves it."""
    newest = data_files(path)[-1]
    with open(newest, "ab") as f:
        f.write(b'{"kind":"event","system_id":"local","timest')
    return newest


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture(params=ON_DISK)
def disk_backend(request) -> str:
    return request.param


# -- Redis ---------------------------------------------------------------------
# The redis backend's interop tests (test_redis.py) need a real redis-server:
# CI starts one and names it in QUIRE_REDIS_URL; otherwise the session starts
# its own from PATH. A missing server is a failure, never a skip: a skipped
# interop test looks like a passing one.

AOF_ALWAYS = ("--appendonly", "yes", "--appendfsync", "always")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A redis-server started here on a free loopback port, with its own
    directory, no RDB snapshots, and the persistence settings asked for."""

    def __init__(self, directory: Path, persistence: tuple[str, ...]) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.fail(
                "the Redis tests need a server: set QUIRE_REDIS_URL=redis://IP:PORT (AOF with "
                "appendfsync always) or put redis-server on PATH (Debian: apt-get install redis-server)",
                pytrace=False,
            )
        directory.mkdir(parents=True, exist_ok=True)
        self.dir = directory
        self.proc: subprocess.Popen | None = None
        log = directory / "redis.log"
        # A port found free may be taken before the server binds it: try another.
        for _ in range(5):
            self.port = _free_port()
            self.proc = subprocess.Popen(
                [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(directory),
                 "--save", "", "--daemonize", "no", "--logfile", str(log), *persistence],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            if self._wait_ready():
                return
            self.stop()
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        pytest.fail(f"redis-server did not start (log {log}):\n{tail}", pytrace=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return True
            except OSError:
                pass
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """The URL of a server that syncs its AOF before every reply, shared by
    the session: each test keeps to its own key prefix (`redis_prefix`)."""
    url = os.environ.get("QUIRE_REDIS_URL")
    if url:
        import redis

        try:
            config = redis.Redis.from_url(url, socket_timeout=5, decode_responses=True).config_get("append*")
        except redis.ConnectionError as e:
            pytest.fail(f"QUIRE_REDIS_URL={url}: no server there ({e})", pytrace=False)
        except redis.ResponseError:
            config = {}  # CONFIG disabled: durable appends will say what the server lacks
        if config and (config.get("appendonly"), config.get("appendfsync")) != ("yes", "always"):
            pytest.fail(
                f"QUIRE_REDIS_URL={url} has appendonly={config.get('appendonly')} "
                f"appendfsync={config.get('appendfsync')}: the tests need yes and always",
                pytrace=False,
            )
        yield url
        return
    server = RedisServer(tmp_path_factory.mktemp("redis"), AOF_ALWAYS)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def redis_prefix(request) -> str:
    """A key prefix of this test's own (no spaces or glob characters)."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name)[:60]
    return f"quire-test-{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def redis_server_without_aof(tmp_path):
    """A server of this test's own that keeps writes in memory (`appendonly no`)."""
    server = RedisServer(tmp_path / "redis-no-aof", ("--appendonly", "no"))
    try:
        yield server
    finally:
        server.stop()
