"""Shared helpers: stores of every built-in backend and ways to damage them."""

from __future__ import annotations

import json
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
