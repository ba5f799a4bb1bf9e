"""quire.Store: every operation of the library, from Python."""

from __future__ import annotations

import json
import threading

import pytest
import quire
from conftest import data_path, line, record, snapshot, tear_tail


def test_records_read_back_exactly_on_every_backend(tmp_path, backend):
    path = data_path(tmp_path, backend)
    lines = [line(i, kind="event" if i % 3 else "audit") for i in range(300)]
    with quire.Store(backend, path) as store:
        assert store.backend["name"] == backend
        assert store.append(lines[:100]) == 100
        assert store.append([json.loads(text) for text in lines[100:]]) == 200
        if backend in ("rotating", "segmented"):
            store.checkpoint()
        assert store.read_lines() == lines
        assert store.read() == [json.loads(text) for text in lines]
        audits = [text for text in lines if '"audit"' in text]
        assert store.read_lines(kinds=["audit"]) == audits
        assert store.read_lines(kinds=["audit"], limit=5) == audits[-5:]
        assert store.read_lines(since=1_700_000_290.0) == lines[290:]
        assert store.read_lines(until=1_700_000_002.0) == lines[:2]
        assert store.read_lines(limit=3, newest_first=True) == lines[-1:-4:-1]
        metrics = store.metrics()
        assert metrics["records_written"] == 300
        store.reset_metrics()
        assert store.metrics()["records_written"] == 0
    if path is not None:
        with quire.Store(backend, path, read_only=True) as again:
            assert again.read_lines() == lines


def test_appends_from_many_threads_all_land_once(tmp_path):
    """The GIL is released in append: eight threads append at once, durable
    per write, and every record is stored exactly once."""
    store = quire.Store("ndjson", tmp_path / "e.ndjson")
    errors = []

    def writer(t: int) -> None:
        try:
            for i in range(100):
                store.append([line(t * 1000 + i)])
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    seqs = sorted(r["seq"] for r in store.read())
    assert seqs == sorted(t * 1000 + i for t in range(8) for i in range(100))
    assert 1 <= store.metrics()["syncs"] <= 800
    store.close()


def test_scan_names_the_damage_and_recover_repairs_it(tmp_path):
    path = tmp_path / "e.ndjson"
    good = [line(i) for i in range(5)]
    path.write_text(good[0] + "\n" + good[1] + "\n" + "{not json\n" + "\n".join(good[2:]) + "\n")
    with quire.Store("ndjson", path, read_only=True) as reader:
        report = reader.scan()
    assert report["anomaly_count"] == 1
    finding = report["anomalies"][0]
    assert finding["kind"] == "CORRUPTED_LINE"
    assert finding["line"] == 3
    assert finding["offset"] == len(good[0]) + len(good[1]) + 2
    assert finding["file"].endswith("e.ndjson")
    with quire.Store("ndjson", path) as store:
        recovery = store.recover()
        assert recovery["after"]["anomaly_count"] == 0
        assert recovery["receipts"][0]["records_kept"] == 5
        assert store.read_lines() == good


def test_a_read_only_open_leaves_a_torn_tail_for_the_scan_to_see(tmp_path, disk_backend):
    path = data_path(tmp_path, disk_backend)
    with quire.Store(disk_backend, path) as store:
        store.append([line(i) for i in range(20)])
    tear_tail(path)
    before = snapshot(path)
    with quire.Store(disk_backend, path, read_only=True) as reader:
        report = reader.scan()
        assert report["anomaly_count"] >= 1, report
        with pytest.raises(quire.QuireError):
            reader.append([line(99)])
    assert snapshot(path) == before


def test_quarantine_copies_the_original_before_repairing(tmp_path):
    path = tmp_path / "e.ndjson"
    path.write_text(line(0) + "\n" + "garbage\n" + line(1) + "\n")
    original = path.read_bytes()
    quarantine = tmp_path / "q"
    quarantine.mkdir()
    with quire.Store("ndjson", path, quarantine_dir=quarantine) as store:
        report = store.recover("quarantine")
    receipt = report["receipts"][0]
    assert receipt["quarantined_to"] is not None
    copied = quarantine / receipt["quarantined_to"].split("/")[-1]
    assert copied.read_bytes() == original
    assert path.read_text() == line(0) + "\n" + line(1) + "\n"


def test_compaction_takes_a_retention_description(tmp_path):
    path = tmp_path / "e.ndjson"
    with quire.Store("ndjson", path) as store:
        store.append([line(i, system_id="a" if i % 2 else "b") for i in range(10)])
        [report] = store.compact({"max_records": 4}, dry_run=True)
        assert (report["records_before"], report["records_after"], report["dry_run"]) == (10, 4, True)
        assert len(store.read()) == 10
        [report] = store.compact({"max_records": 6, "stores": {"a": {"plugin": "permanent"}}})
        kept = store.read()
        assert [r["seq"] for r in kept if r["system_id"] == "a"] == [1, 3, 5, 7, 9]
        assert [r["seq"] for r in kept if r["system_id"] == "b"] == [0, 2, 4, 6, 8][-len([r for r in kept if r["system_id"] == "b"]):]
        assert report["records_after"] == len(kept)
        with pytest.raises(ValueError, match="max_recrds"):
            store.compact({"max_recrds": 1})
        with pytest.raises(quire.UsageError, match="nothing to compact by"):
            store.compact({})


def test_errors_say_what_and_where(tmp_path):
    path = tmp_path / "e.ndjson"
    store = quire.Store("ndjson", path)
    with pytest.raises(quire.InvalidRecordError, match=r"record 1 of 2 \(none appended\)"):
        store.append([line(0), '{"kind": "event", "timestamp": "yesterday"}'])
    assert store.read() == []
    with pytest.raises(quire.StoreLockedError, match="locked"):
        quire.Store("ndjson", path)
    with pytest.raises(TypeError, match="record 0"):
        store.append([object()])
    store.close()
    assert store.closed
    with pytest.raises(quire.StoreClosedError, match="e.ndjson"):
        store.read()
    quire.Store("ndjson", path).close()  # the lock went with close()
    with pytest.raises(quire.PluginLoadError):
        quire.Store("no-such-backend", path)
    with pytest.raises(quire.PluginLoadError, match="missing.wasm"):
        quire.Store(str(tmp_path / "missing.wasm"), path)
    with pytest.raises(ValueError, match="durability"):
        quire.Store("ndjson", path, durability="sometimes")
    with pytest.raises(ValueError, match="needs a path"):
        quire.Store("ndjson")


def test_inspect_and_durability_describe_the_store(tmp_path):
    with quire.Store("rotating", tmp_path / "r", options={"max-records": 10}) as store:
        store.append([record(i, kind="event") for i in range(25)])
        store.append([record(i, kind="audit", system_id="s2") for i in range(3)])
        report = store.inspect()
        assert report["records"] == 28
        assert report["kinds"] == {"audit": 3, "event": 25}
        assert report["stores"] == {"local": 25, "s2": 3}
        assert sum(1 for u in report["units"] if u["sealed"]) >= 2
        assert store.durability()["policy"] == "per-write"
        check = store.startup_check("fail-on-anomaly")
        assert check["ok"] is True


def test_close_waits_for_calls_already_running(tmp_path):
    path = tmp_path / "e.ndjson"
    store = quire.Store("ndjson", path)
    outcome = []

    def big_append():
        try:
            outcome.append(store.append([line(i) for i in range(50_000)]))
        except quire.StoreClosedError:
            outcome.append("closed")

    writer = threading.Thread(target=big_append)
    writer.start()
    store.close()
    # Whether the append got in before close or not, the lock is free now.
    with quire.Store("ndjson", path) as again:
        assert len(again.read_lines()) in (0, 50_000)
    writer.join()
    assert outcome in ([50_000], ["closed"])


def test_append_wants_a_list_and_a_first_start_may_name_a_quarantine_dir(tmp_path):
    with quire.Store("ndjson", tmp_path / "new.ndjson", quarantine_dir=tmp_path / "q") as store:
        with pytest.raises(TypeError, match="not a single record"):
            store.append(record(0))
        with pytest.raises(TypeError, match="not a single record"):
            store.append(line(0))
        assert store.append([record(0)]) == 1
