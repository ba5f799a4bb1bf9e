"""The redis backend against a real redis-server, both ways with papyra 0.3.0's
``RedisStreamsPersistence``: what quire writes, Papyra reads, and the reverse,
checked entry by entry with redis-py. Every test keeps to its own key prefix
(``redis_prefix``) on the session's server (``redis_url``, see conftest.py),
or starts a server of its own.

Not here: compaction, recovery and rewrites of redis stores."""

from __future__ import annotations

import json
import logging

import anyio
import pytest
import quire
import redis
from papyra import ActorSystem
from papyra.persistence._utils import _json_default
from papyra.persistence.backends.redis import RedisStreamsConfig, RedisStreamsPersistence
from papyra.persistence.models import (
    PersistedAudit,
    PersistedDeadLetter,
    PersistedEvent,
    PersistenceAnomalyType,
    PersistenceScanReport,
)
from actors import drive as drive_actors
from quire.papyra import QuirePersistence

STREAMS = {"event": "events", "audit": "audits", "dead_letter": "dead_letters"}


def run(fn, *args):
    return anyio.run(fn, *args)


def raw(url: str) -> redis.Redis:
    """redis-py, bytes in and out: what the server holds, unparsed."""
    return redis.Redis.from_url(url)


def stream(url: str, key: str) -> list[tuple[str, dict[bytes, bytes]]]:
    """`XRANGE key - +`: (id, fields) of every entry, oldest first."""
    return [(i.decode(), fields) for i, fields in raw(url).xrange(key, "-", "+")]


def data_lines(url: str, key: str) -> list[str]:
    """The `data` field of every entry of `key`, each entry checked to hold
    that one field and nothing else."""
    lines = []
    for entry_id, fields in stream(url, key):
        assert list(fields) == [b"data"], f"{key} {entry_id}: {fields}"
        lines.append(fields[b"data"].decode("utf-8"))
    return lines


def papyra(url: str, prefix: str, system_id: str = "local", **kw) -> RedisStreamsPersistence:
    return RedisStreamsPersistence(RedisStreamsConfig(url=url, prefix=prefix, system_id=system_id, **kw))


def papyra_line(kind: str, model) -> str:
    """The `data` Papyra's RedisStreamsPersistence writes for `model`."""
    return json.dumps({"kind": kind, **_json_default(model)}, ensure_ascii=False, default=_json_default)


async def papyra_lists(p: RedisStreamsPersistence, **kw):
    return await p.list_events(**kw), await p.list_audits(**kw), await p.list_dead_letters(**kw)


async def drive(system: ActorSystem, actors: int = 3, messages: int = 4) -> None:
    await drive_actors(system, actors=actors, messages=messages)


def event(system_id: str, i: int, **payload) -> PersistedEvent:
    return PersistedEvent(system_id, f"papyra://{system_id}/a-{i}", "Ticked", {"i": i, **payload},
                          1_700_000_000.0 + i)


def audit(system_id: str, i: int) -> PersistedAudit:
    return PersistedAudit(system_id, 1_700_000_000.0 + i, 3, 2, 1, 0, 3, ("orphan",), (), 1)


def dead_letter(system_id: str, i: int) -> PersistedDeadLetter:
    return PersistedDeadLetter(system_id, f"papyra://{system_id}/gone", "Ping", {"n": [i, None]},
                               1_700_000_000.0 + i)


# -- quire writes, Papyra reads ------------------------------------------------------------------


def test_papyra_reads_what_quire_store_wrote(redis_url, redis_prefix):
    records = [
        {"kind": "event", "system_id": "sys-q", "actor_address": "papyra://sys-q/a", "event_type": "Started",
         "payload": {"é": "ü ✓", "n": [1, 2.5, None]}, "timestamp": 1_700_000_001.25},
        '{"kind": "audit", "system_id": "sys-q", "timestamp": 1700000002, "total_actors": 2, '
        '"alive_actors": 2, "stopping_actors": 0, "restarting_actors": 0, "registry_size": 2, '
        '"registry_orphans": [], "registry_dead": ["x"], "dead_letters_count": 1}',
        {"kind": "dead_letter", "system_id": "sys-q", "target": "papyra://sys-q/b", "message_type": "Ping",
         "payload": None, "timestamp": 1_700_000_003.0},
        {"kind": "event", "system_id": "sys-other", "actor_address": None, "event_type": "Elsewhere",
         "payload": {}, "timestamp": 1_700_000_004.0},
        {"kind": "metric", "system_id": "sys-q", "timestamp": 1_700_000_005.0, "v": 1.5},
        {"kind": "event", "system_id": "sys-q", "actor_address": "papyra://sys-q/a", "event_type": "Stopped",
         "payload": {"why": "done"}, "timestamp": 1_700_000_006.0},
    ]
    with quire.Store("redis", redis_url, options={"prefix": redis_prefix}) as store:
        assert store.append(records) == len(records)
        written = store.read_lines()  # the text quire stored, in append (here: time) order
    assert len(written) == len(records)
    assert json.loads(written[1]) == json.loads(records[1])

    # Papyra's keys, one `data` field per entry holding the record as quire stored it.
    assert data_lines(redis_url, f"{redis_prefix}:sys-q:events") == [written[0], written[5]]
    assert data_lines(redis_url, f"{redis_prefix}:sys-q:audits") == [written[1]]
    assert data_lines(redis_url, f"{redis_prefix}:sys-q:dead_letters") == [written[2]]
    assert data_lines(redis_url, f"{redis_prefix}:sys-other:events") == [written[3]]
    assert data_lines(redis_url, f"{redis_prefix}:sys-q:kind:metric") == [written[4]]
    assert sorted(k.decode() for k in raw(redis_url).keys(f"{redis_prefix}:*")) == sorted(
        f"{redis_prefix}:{k}"
        for k in ("sys-q:events", "sys-q:audits", "sys-q:dead_letters", "sys-other:events", "sys-q:kind:metric")
    )

    async def main():
        theirs = papyra(redis_url, redis_prefix, "sys-q")
        try:
            events, audits, letters = await papyra_lists(theirs)
            newest = await theirs.list_events(limit=1)
            scan = await theirs.scan()
        finally:
            await theirs.aclose()
        other = papyra(redis_url, redis_prefix, "sys-other")
        try:
            elsewhere = await other.list_events()
        finally:
            await other.aclose()
        return events, audits, letters, newest, scan, elsewhere

    events, audits, letters, newest, scan, elsewhere = run(main)
    assert events == (
        PersistedEvent("sys-q", "papyra://sys-q/a", "Started", {"é": "ü ✓", "n": [1, 2.5, None]}, 1_700_000_001.25),
        PersistedEvent("sys-q", "papyra://sys-q/a", "Stopped", {"why": "done"}, 1_700_000_006.0),
    )
    assert newest == events[-1:]
    assert audits == (PersistedAudit("sys-q", 1_700_000_002, 2, 2, 0, 0, 2, [], ["x"], 1),)
    assert letters == (PersistedDeadLetter("sys-q", "papyra://sys-q/b", "Ping", None, 1_700_000_003.0),)
    assert elsewhere == (PersistedEvent("sys-other", None, "Elsewhere", {}, 1_700_000_004.0),)
    assert not scan.has_anomalies


def test_quire_persistence_writes_papyras_bytes_and_papyra_reads_an_actor_systems_history(
    redis_url, redis_prefix
):
    # QuirePersistence reads every system under its prefix (Papyra's backend, its
    # `system_id`'s streams only): the actor system gets a prefix of its own.
    ours_prefix, theirs_prefix = f"{redis_prefix}-quire", f"{redis_prefix}-papyra"
    system_prefix = f"{redis_prefix}-system"
    models = [("event", event("s", 1, text="é ✓")), ("audit", audit("s", 2)), ("dead_letter", dead_letter("s", 3))]

    async def main():
        # The same records through each backend: the same bytes in the same streams.
        ours = QuirePersistence(redis_url, backend="redis", options={"prefix": ours_prefix})
        theirs = papyra(redis_url, theirs_prefix, "s")
        for p in (ours, theirs):
            await p.record_event(models[0][1])
            await p.record_audit(models[1][1])
            await p.record_dead_letter(models[2][1])
        assert ours.metrics.snapshot()["write_errors"] == 0
        await ours.aclose()
        await theirs.aclose()

        # A whole actor system on QuirePersistence; Papyra reads its history.
        persistence = QuirePersistence(redis_url, backend="redis", options={"prefix": system_prefix})
        assert persistence.path == redis_url
        async with ActorSystem(system_id="sys-a", persistence=persistence) as system:
            await drive(system)
        mine = await papyra_lists(persistence)
        snapshot = persistence.metrics.snapshot()
        scan = await persistence.scan()
        papyras = papyra(redis_url, system_prefix, "sys-a")
        try:
            seen = await papyra_lists(papyras)
            newest = await papyras.list_events(limit=2)
        finally:
            await papyras.aclose()
        # A new QuirePersistence on the same server sees the same history.
        again = QuirePersistence(redis_url, backend="redis", options={"prefix": system_prefix})
        return mine, snapshot, scan, seen, newest, await papyra_lists(again), await again.list_events(limit=2)

    mine, snapshot, scan, seen, newest, again, again_newest = run(main)

    for kind, model in models:
        line = papyra_line(kind, model)
        assert data_lines(redis_url, f"{theirs_prefix}:s:{STREAMS[kind]}") == [line]
        assert data_lines(redis_url, f"{ours_prefix}:s:{STREAMS[kind]}") == [line], kind

    events, audits, letters = seen
    assert [e.event_type for e in events].count("ActorStarted") == 3
    assert any(e.event_type == "ActorStopped" for e in events)
    assert {e.system_id for e in events} == {"sys-a"}
    assert len(audits) == 1 and audits[0].total_actors == 3
    assert len(letters) == 1 and letters[0].message_type == "str"
    assert seen == mine == again
    assert newest == events[-2:] == again_newest
    assert snapshot["records_written"] == len(events) + 2 and snapshot["write_errors"] == 0
    assert isinstance(scan, PersistenceScanReport) and not scan.has_anomalies
    # Every entry as Papyra writes it: papyra's own serialisation of what Papyra read back.
    for kind, items in zip(STREAMS, seen):
        assert data_lines(redis_url, f"{system_prefix}:sys-a:{STREAMS[kind]}") == [papyra_line(kind, x) for x in items]


# -- Papyra writes, quire reads ------------------------------------------------------------------


def test_quire_reads_what_papyra_wrote_byte_for_byte(redis_url, redis_prefix):
    # Records written one by one, and an actor system's history, each under a
    # prefix of its own (QuirePersistence reads every system under its prefix).
    TEXT = "é ✓ \u2028 \"quoted\""
    direct = (f"{redis_prefix}-direct", "sys-p")
    live = (f"{redis_prefix}-live", "sys-live")

    async def main():
        theirs = papyra(redis_url, *direct)
        try:
            for i in range(0, 12, 3):
                await theirs.record_event(event("sys-p", i, text=TEXT))
                await theirs.record_audit(audit("sys-p", i + 1))
                await theirs.record_dead_letter(dead_letter("sys-p", i + 2))
        finally:
            await theirs.aclose()
        # And an actor system of Papyra's own on its Redis backend.
        system_persistence = papyra(redis_url, *live)
        async with ActorSystem(system_id="sys-live", persistence=system_persistence) as system:
            await drive(system, actors=2, messages=2)
        await system_persistence.aclose()

    run(main)
    for prefix, system_id in (direct, live):
        with quire.Store("redis", redis_url, options={"prefix": prefix}, read_only=True) as store:
            everything = []
            for kind, name in STREAMS.items():
                stored = data_lines(redis_url, f"{prefix}:{system_id}:{name}")
                assert stored, f"{system_id} {kind}"
                # Byte for byte, in the stream's order, as Papyra stored them.
                assert store.read_lines(kinds=[kind]) == stored, f"{system_id} {kind}"
                assert store.read_lines(kinds=[kind], stores=[system_id]) == stored
                assert store.read(kinds=[kind]) == [json.loads(x) for x in stored]
                assert store.read_lines(kinds=[kind], limit=2) == stored[-2:]
                assert store.read_lines(kinds=[kind], newest_first=True) == stored[::-1]
                everything += stored
            # Across the three streams: every record once.
            assert sorted(store.read_lines()) == sorted(everything)
            assert store.read_lines(stores=["someone-else"]) == []
            report = store.scan()
            assert report["anomaly_count"] == 0 and report["records"] == len(everything)
    with quire.Store("redis", redis_url, options={"prefix": direct[0]}, read_only=True) as store:
        assert store.read_lines(kinds=["event"], limit=1) == [papyra_line("event", event("sys-p", 9, text=TEXT))]

    async def compare():
        # QuirePersistence reads Papyra's records as Papyra's models, exactly as Papyra does.
        for prefix, system_id in (direct, live):
            theirs = papyra(redis_url, prefix, system_id)
            try:
                want = await papyra_lists(theirs)
                want_newest = await theirs.list_audits(limit=1)
            finally:
                await theirs.aclose()
            assert all(want), want
            ours = QuirePersistence(redis_url, backend="redis", options={"prefix": prefix})
            assert await papyra_lists(ours) == want
            assert await ours.list_audits(limit=1) == want_newest
            assert not (await ours.scan()).has_anomalies

    run(compare)


def test_both_writers_on_one_stream_read_one_history(redis_url, redis_prefix):
    """Papyra's `XADD *` and quire's planned ids interleave on one stream:
    each writer continues after the other, and both read the same order."""
    key = f"{redis_prefix}:local:events"

    async def papyra_writes(first: int):
        theirs = papyra(redis_url, redis_prefix)
        try:
            for i in range(first, first + 3):
                await theirs.record_event(event("local", i, by="papyra"))
        finally:
            await theirs.aclose()

    def quire_writes(first: int):
        with quire.Store("redis", redis_url, options={"prefix": redis_prefix}) as store:
            store.append([papyra_line("event", event("local", i, by="quire")) for i in range(first, first + 3)])

    run(papyra_writes, 0)
    quire_writes(3)
    run(papyra_writes, 6)
    quire_writes(9)

    ids = [entry_id for entry_id, _ in stream(redis_url, key)]
    assert len(ids) == 12
    as_tuples = [tuple(int(p) for p in i.split("-")) for i in ids]
    assert as_tuples == sorted(as_tuples) and len(set(as_tuples)) == 12
    stored = data_lines(redis_url, key)
    assert [json.loads(x)["payload"]["i"] for x in stored] == list(range(12))
    assert [json.loads(x)["payload"]["by"] for x in stored] == (["papyra"] * 3 + ["quire"] * 3) * 2

    async def reads():
        theirs = papyra(redis_url, redis_prefix)
        try:
            return await theirs.list_events()
        finally:
            await theirs.aclose()

    assert [e.payload["i"] for e in run(reads)] == list(range(12))
    with quire.Store("redis", redis_url, options={"prefix": redis_prefix}, read_only=True) as store:
        assert store.read_lines() == stored


# -- scan ----------------------------------------------------------------------------------------


def test_quire_scan_finds_damage_older_than_papyras_newest_thousand(redis_url, redis_prefix):
    key = f"{redis_prefix}:local:events"
    r = raw(redis_url)
    # Damage at the oldest end of the stream, written before any record.
    damaged = [
        r.xadd(key, {"data": b'{"kind": "event", "system_id": "loc'}).decode(),  # torn JSON
        r.xadd(key, {"payload": b"{}"}).decode(),  # no `data` field
        r.xadd(key, {"data": b"[1, 2, 3]"}).decode(),  # not a JSON object
    ]
    records = [papyra_line("event", event("local", i)) for i in range(1_200)]
    with quire.Store("redis", redis_url, options={"prefix": redis_prefix}) as store:
        for i in range(0, len(records), 400):
            store.append(records[i : i + 400])

    async def papyras_view():
        theirs = papyra(redis_url, redis_prefix)
        try:
            return await theirs.scan(), await theirs.list_events()
        finally:
            await theirs.aclose()

    scan, listed = run(papyras_view)
    # Papyra samples the newest 1,000 entries: the damage is never found.
    assert not scan.has_anomalies
    assert len(listed) == 1_200

    with quire.Store("redis", redis_url, options={"prefix": redis_prefix}, read_only=True) as store:
        report = store.scan()
        assert report["records"] == 1_200
        assert report["anomaly_count"] == 3, report["anomalies"]
        found = report["anomalies"]
        assert [f["kind"] for f in found] == ["CORRUPTED_LINE", "INVALID_RECORD", "INVALID_RECORD"]
        for finding, entry_id, words in zip(found, damaged, ["invalid JSON", "no `data` field", "not a JSON object"]):
            assert finding["unit"] == key
            assert finding["detail"].startswith(f"entry {entry_id}") and words in finding["detail"], finding
        # Reads skip exactly what scan names.
        assert store.read_lines() == records

    # Through QuirePersistence: Papyra's report, the entry ids in the details.
    ours = QuirePersistence(redis_url, backend="redis", options={"prefix": redis_prefix})
    report = run(ours.scan)
    assert len(report.anomalies) == 3
    assert all(a.type is PersistenceAnomalyType.CORRUPTED_LINE and a.path == key for a in report.anomalies)
    for anomaly, entry_id in zip(report.anomalies, damaged):
        assert f"entry {entry_id}" in anomaly.detail and "byte" not in anomaly.detail, anomaly.detail
    assert ours.metrics.snapshot()["anomalies_detected"] == 3
    assert [e.payload["i"] for e in run(ours.list_events)] == list(range(1_200))


def test_papyras_quarantine_stream_is_not_read_as_records(redis_url, redis_prefix):
    """Papyra's QUARANTINE recovery copies a bad entry to
    `{prefix}:{system}:quarantine:{stream}`: not a record stream to quire."""
    from papyra.persistence.models import PersistenceRecoveryConfig, PersistenceRecoveryMode

    key = f"{redis_prefix}:local:events"
    raw(redis_url).xadd(key, {"data": b"not json"})

    async def main():
        theirs = papyra(redis_url, redis_prefix)
        try:
            await theirs.record_event(event("local", 1))
            return await theirs.recover(PersistenceRecoveryConfig(mode=PersistenceRecoveryMode.QUARANTINE))
        finally:
            await theirs.aclose()

    recovery = run(main)
    quarantine = f"{redis_prefix}:local:quarantine:{key.replace(':', '_')}"
    assert recovery.quarantined_files == (quarantine,)
    assert raw(redis_url).xlen(quarantine) == 1
    with quire.Store("redis", redis_url, options={"prefix": redis_prefix}, read_only=True) as store:
        assert [u["id"] for u in store.inspect()["units"]] == [key]
        assert store.read_lines() == [papyra_line("event", event("local", 1))]
        assert store.scan()["anomaly_count"] == 0


# -- reads of a long stream ---------------------------------------------------------------------


def test_newest_n_is_the_newest_of_a_long_stream(redis_url, redis_prefix):
    """Papyra reads a window from the oldest entry (`max_read`, 50,000 by
    default; 100 here) and takes its last N; quire reads the newest N."""
    records = [papyra_line("event", event("local", i)) for i in range(250)]
    with quire.Store("redis", redis_url, options={"prefix": redis_prefix}) as store:
        store.append(records)
        assert store.read_lines(limit=3) == records[-3:]

    async def main():
        theirs = papyra(redis_url, redis_prefix, max_read=100)
        try:
            window = await theirs.list_events(limit=3)
        finally:
            await theirs.aclose()
        ours = QuirePersistence(redis_url, backend="redis", options={"prefix": redis_prefix})
        return window, await ours.list_events(limit=3)

    window, newest = run(main)
    assert [e.payload["i"] for e in window] == [97, 98, 99]
    assert [e.payload["i"] for e in newest] == [247, 248, 249]


# -- durability ----------------------------------------------------------------------------------


def test_durable_append_is_refused_by_a_server_without_aof(redis_server_without_aof, caplog):
    url = redis_server_without_aof.url
    address = url.removeprefix("redis://")
    line = papyra_line("event", event("local", 1))
    r = raw(url)

    with quire.Store("redis", url, options={"prefix": "refused"}, durability="per-write") as store:
        with pytest.raises(quire.QuireError) as refused:
            store.append([line])
        message = str(refused.value)
        assert "durable" in message and "appendonly is off" in message and address in message, message
        assert "nothing of this batch was written" in message, message
        assert r.exists("refused:local:events") == 0
        durability = store.durability()["stores"]
        assert durability == [] or durability[0]["accepted"] == 0, durability

    # QuirePersistence never raises into the actor system: logged, counted, not stored.
    ours = QuirePersistence(url, backend="redis", options={"prefix": "refused-papyra"})
    with caplog.at_level(logging.WARNING, logger="quire.papyra"):
        run(ours.record_event, event("local", 1))
    run(ours.aclose)
    assert ours.metrics.snapshot()["write_errors"] == 1
    assert ours.metrics.snapshot()["records_written"] == 0
    assert any("appendonly is off" in rec.getMessage() for rec in caplog.records), caplog.text
    assert r.exists("refused-papyra:local:events") == 0

    # The documented downgrade: accepted once the server has it, and reported unsynced.
    with quire.Store(
        "redis", url, options={"prefix": "unsynced", "accept-unsynced": "true"}, durability="per-write"
    ) as store:
        assert store.append([line, line]) == 2
        (local,) = store.durability()["stores"]
        assert (local["accepted"], local["unsynced"], local["state"]) == (2, 2, "written"), local
        assert "accept-unsynced" in local["codec"] and "appendonly is off" in local["codec"], local
    assert data_lines(url, "unsynced:local:events") == [line, line]
