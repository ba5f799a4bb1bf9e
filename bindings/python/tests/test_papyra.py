"""QuirePersistence inside papyra 0.3.0's ActorSystem, on every built-in backend."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
import quire
from actors import drive
from conftest import data_path, snapshot, tear_tail
from papyra import ActorSystem
from papyra.persistence import JsonFilePersistence
from papyra.persistence.backends.retention import RetentionPolicy
from papyra.persistence.contract import PersistenceBackendContract, backend_capabilities
from papyra.persistence.models import (
    CompactionReport,
    PersistedAudit,
    PersistedDeadLetter,
    PersistedEvent,
    PersistenceAnomalyType,
    PersistenceRecoveryConfig,
    PersistenceRecoveryMode,
    PersistenceRecoveryReport,
    PersistenceScanReport,
)
from papyra.persistence.startup import PersistenceStartupConfig, PersistenceStartupMode
from quire.papyra import QuirePersistence


def run(fn, *args, backend: str = "asyncio"):
    return anyio.run(fn, *args, backend=backend)




def persistence(tmp_path, backend, **kw) -> QuirePersistence:
    return QuirePersistence(data_path(tmp_path, backend), backend=backend, **kw)


def test_an_actor_system_persists_events_audits_and_dead_letters(tmp_path, backend):
    store = persistence(tmp_path, backend)
    assert isinstance(store, PersistenceBackendContract)
    caps = backend_capabilities(store)
    assert caps.supports_scan and caps.supports_recover and caps.supports_compact and caps.supports_metrics

    async def main():
        async with ActorSystem(system_id="sys-a", persistence=store) as system:
            await drive(system)
        events = await store.list_events()
        audits = await store.list_audits()
        letters = await store.list_dead_letters()
        return events, audits, letters

    events, audits, letters = run(main)
    started = [e for e in events if e.event_type == "ActorStarted"]
    assert len(started) == 3 and all(isinstance(e, PersistedEvent) for e in events)
    assert {e.system_id for e in events} == {"sys-a"}
    assert any(e.event_type == "ActorStopped" for e in events)
    assert len(audits) == 1 and isinstance(audits[0], PersistedAudit) and audits[0].total_actors == 3
    assert len(letters) == 1 and isinstance(letters[0], PersistedDeadLetter)
    assert letters[0].message_type == "str"
    snap = store.metrics.snapshot()
    assert set(snap) == {
        "records_written", "bytes_written", "scans", "anomalies_detected", "recoveries",
        "compactions", "write_errors", "scan_errors", "recovery_errors", "compaction_errors",
    }
    assert snap["records_written"] == len(events) + 2 and snap["write_errors"] == 0
    store.metrics.reset()
    assert store.metrics.snapshot()["records_written"] == 0

    if backend != "memory":
        # A new backend on the same data sees the same history.
        again = persistence(tmp_path, backend)
        assert run(again.list_events) == events
        run(again.aclose)


def test_papyra_reads_what_quire_wrote_and_quire_reads_what_papyra_wrote(tmp_path):
    path = tmp_path / "events.ndjson"

    async def main():
        ours = QuirePersistence(path)
        async with ActorSystem(system_id="s", persistence=ours) as system:
            await drive(system, actors=2, messages=1)
        theirs = JsonFilePersistence(path)
        assert await theirs.list_events() == await QuirePersistence(path).list_events()
        await theirs.record_event(PersistedEvent("s", "papyra://s/x", "Written", {"by": "papyra"}, 5.0))
        await theirs.aclose()
        mine = QuirePersistence(path)
        written = [e for e in await mine.list_events() if e.event_type == "Written"]
        assert written == [PersistedEvent("s", "papyra://s/x", "Written", {"by": "papyra"}, 5.0)]
        # The same line Papyra would write, byte for byte.
        await mine.record_event(PersistedEvent("s", "papyra://s/y", "Ours", {"n": 1, "é": "ü"}, 6.0))
        await mine.aclose()
        last = path.read_text(encoding="utf-8").splitlines()[-1]
        assert last == json.dumps(
            {"kind": "event", "system_id": "s", "actor_address": "papyra://s/y",
             "event_type": "Ours", "payload": {"n": 1, "é": "ü"}, "timestamp": 6.0},
            ensure_ascii=False,
        )

    run(main)


def test_scan_never_changes_data_and_fail_on_anomaly_refuses_to_start(tmp_path, disk_backend):
    path = data_path(tmp_path, disk_backend)
    run(fill, path, disk_backend)
    tear_tail(path)
    before = snapshot(path)
    store = persistence(tmp_path, disk_backend)
    report = run(store.scan)
    assert isinstance(report, PersistenceScanReport) and report.has_anomalies
    assert report.anomalies[0].type in (PersistenceAnomalyType.TRUNCATED_LINE, PersistenceAnomalyType.PARTIAL_WRITE)
    assert str(path) in report.anomalies[0].path
    assert snapshot(path) == before

    async def start_strict():
        system = ActorSystem(
            persistence=store,
            persistence_startup=PersistenceStartupConfig(mode=PersistenceStartupMode.FAIL_ON_ANOMALY),
        )
        with pytest.raises(RuntimeError, match="anomalies detected at startup"):
            await system.start()
        await system.aclose()

    run(start_strict)
    assert snapshot(path) == before  # refused, and untouched


def test_recover_mode_repairs_then_the_system_runs(tmp_path, disk_backend):
    path = data_path(tmp_path, disk_backend)
    written = run(fill, path, disk_backend)
    tear_tail(path)
    store = persistence(tmp_path, disk_backend)
    reports = []

    class Hooks:
        async def on_persistence_recovery(self, report):
            reports.append(report)

    async def main():
        system = ActorSystem(
            persistence=store,
            hooks=Hooks(),
            persistence_startup=PersistenceStartupConfig(
                mode=PersistenceStartupMode.RECOVER,
                recovery=PersistenceRecoveryConfig(mode=PersistenceRecoveryMode.REPAIR),
            ),
        )
        async with system:
            await drive(system, actors=1, messages=1)
        return await store.list_events()

    events = run(main)
    assert [e.payload for e in events[: len(written)]] == [{"seq": i} for i in range(len(written))]
    assert len(reports) == 1 and isinstance(reports[0], PersistenceRecoveryReport)
    assert reports[0].repaired_files
    assert not run(persistence(tmp_path, disk_backend).scan).has_anomalies


def test_quarantine_recovery_keeps_the_damaged_original(tmp_path):
    path = tmp_path / "events.ndjson"
    run(fill, path, "ndjson")
    with open(path, "ab") as f:
        f.write(b"not json at all\n")
    damaged = path.read_bytes()
    quarantine = tmp_path / "quarantine"
    store = QuirePersistence(path)
    report = run(store.recover, PersistenceRecoveryConfig(PersistenceRecoveryMode.QUARANTINE, str(quarantine)))
    assert len(report.quarantined_files) == 1
    copied = quarantine / report.quarantined_files[0].split("/")[-1]
    assert copied.read_bytes() == damaged
    assert report.scan.anomalies[0].type is PersistenceAnomalyType.CORRUPTED_LINE
    assert not run(store.scan).has_anomalies
    assert len(run(store.list_events)) == 10
    assert store.metrics.snapshot()["recoveries"] == 1


async def fill(path, backend, n: int = 10) -> list[PersistedEvent]:
    store = QuirePersistence(path, backend=backend)
    events = [PersistedEvent("local", f"papyra://local/{i}", "Tick", {"seq": i}, 1000.0 + i) for i in range(n)]
    for event in events:
        await store.record_event(event)
    await store.aclose()
    return events


def test_retention_applies_to_reads_and_compaction(tmp_path, disk_backend):
    path = data_path(tmp_path, disk_backend)
    store = persistence(tmp_path, disk_backend, retention_policy=RetentionPolicy(max_records=4))

    async def main():
        for i in range(10):
            await store.record_event(PersistedEvent("local", "a", "Tick", {"seq": i}, 1000.0 + i))
        await store.record_audit(PersistedAudit("local", 2000.0, 1, 1, 0, 0, 1, (), (), 0))
        events = await store.list_events()
        report = await store.compact()
        return events, report, await store.list_events(), await store.list_audits()

    events, report, after, audits = run(main)
    # The newest four records overall: the audit and three events.
    assert [e.payload["seq"] for e in events] == [7, 8, 9]
    assert isinstance(report, CompactionReport)
    assert (report.backend, report.before_records, report.after_records) == (disk_backend, 11, 4)
    assert report.reclaimed_bytes > 0
    assert after == events and len(audits) == 1
    plain = QuirePersistence(path, backend=disk_backend)
    assert len(run(plain.list_events)) == 3  # physically gone


def test_limit_and_since_select_the_newest(tmp_path):
    store = QuirePersistence(tmp_path / "e.ndjson")

    async def main():
        for i in range(20):
            await store.record_event(PersistedEvent("local", "a", "Tick", {"seq": i}, 100.0 + i))
        newest = await store.list_events(limit=3)
        since = await store.list_events(since=115.0)
        both = await store.list_events(since=110.0, limit=2)
        none = await store.list_events(limit=0)
        return newest, since, both, none

    newest, since, both, none = run(main)
    assert [e.payload["seq"] for e in newest] == [17, 18, 19]
    assert [e.payload["seq"] for e in since] == [15, 16, 17, 18, 19]
    assert [e.payload["seq"] for e in both] == [18, 19]
    assert none == ()


@dataclass
class Custom:
    system_id: str
    event_type: str
    timestamp: float


class Plain:
    def __init__(self) -> None:
        self.system_id = "obj"
        self.event_type = "FromObject"
        self.timestamp = 3.0


def test_dicts_and_other_objects_are_accepted_and_failures_never_raise(tmp_path, caplog):
    store = QuirePersistence(tmp_path / "e.ndjson")

    async def main():
        await store.record_event({"system_id": "d", "event_type": "FromDict", "timestamp": 1.0})
        await store.record_event(Custom("c", "FromDataclass", 2.0))
        await store.record_event(Plain())
        await store.record_dead_letter({"system_id": "d", "message_type": "X", "payload": {1, 2}, "timestamp": 4.0})
        return await store.list_events(), await store.list_dead_letters()

    events, letters = run(main)
    assert [(e.system_id, e.event_type) for e in events] == [
        ("d", "FromDict"), ("c", "FromDataclass"), ("obj", "FromObject"),
    ]
    assert letters[0].payload == "{1, 2}"  # not JSON: stored as its text, as Papyra does

    broken = QuirePersistence(tmp_path / "e.ndjson", backend=str(tmp_path / "missing.wasm"))
    with caplog.at_level(logging.WARNING, logger="quire.papyra"):
        assert run(broken.record_event, PersistedEvent("s", "a", "Lost", {}, 1.0)) is None
    assert broken.metrics.snapshot()["write_errors"] == 1
    assert "missing.wasm" in caplog.text
    run(store.aclose)


def test_aclose_releases_the_writer_lock_and_later_records_are_dropped(tmp_path):
    path = tmp_path / "e.ndjson"
    store = QuirePersistence(path)
    run(store.record_event, PersistedEvent("s", "a", "One", {}, 1.0))
    with pytest.raises(quire.StoreLockedError):
        quire.Store("ndjson", path)
    run(store.aclose)
    run(store.record_event, PersistedEvent("s", "a", "Late", {}, 2.0))
    with quire.Store("ndjson", path) as direct:
        assert [r["event_type"] for r in direct.read()] == ["One"]


def test_trio_runs_it_too(tmp_path):
    store = QuirePersistence(tmp_path / "store", backend="segmented")

    async def main():
        async with ActorSystem(persistence=store) as system:
            await drive(system, actors=2, messages=2)
        return await store.list_events()

    events = run(main, backend="trio")
    assert sum(1 for e in events if e.event_type == "ActorStarted") == 2


def test_concurrent_records_share_syncs_and_all_land(tmp_path):
    store = QuirePersistence(tmp_path / "e.ndjson")

    async def main():
        async with anyio.create_task_group() as tg:
            for i in range(500):
                tg.start_soon(store.record_event, PersistedEvent("s", "a", "Tick", {"seq": i}, float(i)))
        events = await store.list_events()
        await store.aclose()
        return events

    events = run(main)
    assert sorted(e.payload["seq"] for e in events) == list(range(500))
    assert store.metrics.snapshot()["records_written"] == 500


def test_quarantine_keeps_a_torn_tail_on_every_disk_backend(tmp_path, disk_backend):
    path = data_path(tmp_path, disk_backend)
    run(fill, path, disk_backend)
    torn_file = tear_tail(path)
    torn = torn_file.read_bytes()
    quarantine = tmp_path / "quarantine"
    store = persistence(tmp_path, disk_backend)
    report = run(store.recover, PersistenceRecoveryConfig(PersistenceRecoveryMode.QUARANTINE, str(quarantine)))
    copies = [quarantine / Path(p).name for p in report.quarantined_files]
    assert [c.read_bytes() for c in copies] == [torn], report
    assert not run(store.scan).has_anomalies
    assert [e.payload["seq"] for e in run(store.list_events)] == list(range(10))


def test_a_cancelled_leader_costs_the_others_nothing(tmp_path):
    """The first caller leads the group append; cancelling it must not cancel
    or lose the records of the callers batched with it."""
    for flavour in ("asyncio", "trio"):
        store = QuirePersistence(tmp_path / f"{flavour}.ndjson")
        outcomes = {}

        async def record(name, scope_box=None):
            try:
                if scope_box is not None:
                    with anyio.CancelScope() as scope:
                        scope_box.append(scope)
                        await store.record_event(PersistedEvent("s", "a", name, {}, 1.0))
                else:
                    await store.record_event(PersistedEvent("s", "a", name, {}, 1.0))
                outcomes[name] = "returned"
            except BaseException as e:  # noqa: BLE001 - recorded for the assertion
                outcomes[name] = repr(e)
                raise

        async def main():
            box = []
            async with anyio.create_task_group() as tg:
                tg.start_soon(record, "A", box)
                tg.start_soon(record, "B")
                tg.start_soon(record, "C")
                while not box:
                    await anyio.sleep(0)
                box[0].cancel()
            return await store.list_events()

        events = run(main, backend=flavour)
        assert outcomes["B"] == outcomes["C"] == "returned", (flavour, outcomes)
        assert {"B", "C"} <= {e.event_type for e in events}, flavour
        assert store.metrics.snapshot()["write_errors"] == 0
        run(store.aclose)


def test_a_bad_record_fails_only_its_own_caller(tmp_path):
    store = QuirePersistence(tmp_path / "e.ndjson")

    async def main():
        async with anyio.create_task_group() as tg:
            tg.start_soon(store.record_event, PersistedEvent("s", "a", "Good1", {}, 1.0))
            tg.start_soon(store.record_event, PersistedEvent("s", "a", "NaN", {"x": float("nan")}, 2.0))
            tg.start_soon(store.record_event, {"system_id": "s", "event_type": "BadTime", "timestamp": "noon"})
            tg.start_soon(store.record_event, PersistedEvent("s", "a", "Good2", {}, 3.0))
        return await store.list_events()

    events = run(main)
    assert sorted(e.event_type for e in events) == ["Good1", "Good2"]
    assert store.metrics.snapshot()["write_errors"] == 2
    run(store.aclose)


def test_configuration_mistakes_are_refused_at_construction(tmp_path):
    with pytest.raises(ValueError, match="durability 'perwrite'"):
        QuirePersistence(tmp_path / "e.ndjson", durability="perwrite")
    with pytest.raises(ValueError, match="backend 'ndjsn'"):
        QuirePersistence(tmp_path / "e.ndjson", backend="ndjsn")
    store = QuirePersistence(tmp_path / "e.ndjson")
    with pytest.raises(ValueError, match="limit"):
        run(lambda: store.list_events(limit=-1))
