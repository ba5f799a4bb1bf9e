"""kill -9 an actor system mid-write; on restart (startup RECOVER) every
acknowledged record is there, once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from conftest import data_path
from papyra import ActorSystem
from papyra.persistence.models import PersistenceRecoveryConfig, PersistenceRecoveryMode
from papyra.persistence.startup import PersistenceStartupConfig, PersistenceStartupMode
from quire.papyra import QuirePersistence

CHILD = Path(__file__).with_name("acked_writer.py")


def kill_after(path: Path, backend: str, run: int, acked_target: int) -> int:
    """Runs the writer until it has acknowledged at least `acked_target`
    records, kills it with SIGKILL, and returns how many were acknowledged."""
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(path), backend, str(run)],
        stdout=subprocess.PIPE,
        text=True,
    )
    acked = 0
    try:
        for out in child.stdout:
            assert out.startswith("acked "), out
            acked = int(out.split()[1])
            if acked >= acked_target:
                break
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    return acked


@pytest.mark.parametrize("backend", ["ndjson", "rotating", "segmented"])
def test_every_acknowledged_record_survives_kill_9(tmp_path, backend):
    path = data_path(tmp_path, backend)
    rng = random.Random(int.from_bytes(os.urandom(4), "little"))
    acked: dict[int, int] = {}
    for run in range(3):
        acked[run] = kill_after(path, backend, run, rng.randrange(50, 400))
        store = QuirePersistence(path, backend=backend)

        async def restart():
            system = ActorSystem(
                system_id="killed",
                persistence=store,
                persistence_startup=PersistenceStartupConfig(
                    mode=PersistenceStartupMode.RECOVER,
                    recovery=PersistenceRecoveryConfig(mode=PersistenceRecoveryMode.REPAIR),
                ),
            )
            async with system:
                pass
            return await store.list_events()

        events = anyio.run(restart)
        stored = [(e.payload["run"], e.payload["seq"]) for e in events if e.event_type == "Acked"]
        assert len(stored) == len(set(stored)), f"run {run}: a record stored twice"
        for earlier, count in acked.items():
            missing = set((earlier, i) for i in range(count)) - set(stored)
            assert not missing, f"after run {run}: acknowledged records of run {earlier} lost: {sorted(missing)[:5]}"
        assert sum(1 for e in events if e.event_type == "ActorStarted") >= run + 1
