"""quire as a persistence backend for papyra 0.3.0's ``ActorSystem``.

    from papyra import ActorSystem
    from quire.papyra import QuirePersistence

    system = ActorSystem(persistence=QuirePersistence("events.ndjson"))

Records keep Papyra's layout (one JSON object per record with ``kind``,
``system_id`` and ``timestamp``), so an ``ndjson`` store is the very file
``JsonFilePersistence`` reads and writes.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from papyra.persistence._utils import _json_default, _pick_dataclass_fields
from papyra.persistence.backends.retention import RetentionPolicy
from papyra.persistence.base import PersistenceBackend
from papyra.persistence.models import (
    CompactionReport,
    PersistedAudit,
    PersistedDeadLetter,
    PersistedEvent,
    PersistenceAnomaly,
    PersistenceAnomalyType,
    PersistenceRecoveryConfig,
    PersistenceRecoveryMode,
    PersistenceRecoveryReport,
    PersistenceScanReport,
)

from quire._quire import BUILTIN_BACKENDS, InvalidRecordError, Store, StoreClosedError

__all__ = ["QuirePersistence"]

log = logging.getLogger("quire.papyra")

# quire's anomaly kinds in Papyra's vocabulary; the detail keeps quire's own name.
_ANOMALY_TYPES = {
    "TRUNCATED_LINE": PersistenceAnomalyType.TRUNCATED_LINE,
    "PARTIAL_WRITE": PersistenceAnomalyType.PARTIAL_WRITE,
    "CORRUPTED_LINE": PersistenceAnomalyType.CORRUPTED_LINE,
    "INVALID_RECORD": PersistenceAnomalyType.CORRUPTED_LINE,
    "BLANK_LINE": PersistenceAnomalyType.CORRUPTED_LINE,
    "CHECKSUM_MISMATCH": PersistenceAnomalyType.CORRUPTED_LINE,
    "ORPHANED_FILE": PersistenceAnomalyType.ORPHANED_ROTATED_FILE,
    "MANIFEST_MISMATCH": PersistenceAnomalyType.UNEXPECTED_FILE,
}


def _fields_of(obj: Any) -> dict[str, Any]:
    """A record's fields: dataclasses (Papyra's models) by field, mappings as
    they are, other objects by their attributes, anything else as a payload."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in fields(obj)}
    if isinstance(obj, Mapping):
        return dict(obj)
    dump = getattr(obj, "model_dump", None)  # pydantic models
    if callable(dump):
        return dict(dump())
    attributes = getattr(obj, "__dict__", None)
    if isinstance(attributes, dict) and attributes:
        return {k: v for k, v in attributes.items() if not k.startswith("_")}
    return {"payload": obj}


def _json_line(kind: str, obj: Any) -> str:
    """Papyra's line for a record: ``kind`` first, then its fields."""
    record = {"kind": kind, **{k: v for k, v in _fields_of(obj).items() if k != "kind"}}
    # NaN and Infinity are not JSON: refused here, for this caller alone.
    return json.dumps(record, ensure_ascii=False, default=_json_default, allow_nan=False)


class _Batch:
    __slots__ = ("lines", "done", "errors")

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.done = False
        self.errors: dict[int, Exception] = {}


def _write_batch(write: Any, lines: list[str]) -> dict[int, Exception]:
    """Writes every line at once. A batch is all or nothing, so when one
    record is refused each line is written alone: a bad record fails only
    the caller who gave it. Returns the failures by line."""
    try:
        write(lines)
        return {}
    except InvalidRecordError as e:
        if len(lines) == 1:
            return {0: e}
    except Exception as e:
        return dict.fromkeys(range(len(lines)), e)
    errors: dict[int, Exception] = {}
    for i, line in enumerate(lines):
        try:
            write([line])
        except Exception as e:
            errors[i] = e
    return errors


class _GroupAppender:
    """Appends from many tasks in one worker-thread call: whoever holds the
    lock writes every line queued so far; the rest find their batch done.
    One sync then covers many records, and the event loop never blocks."""

    def __init__(self) -> None:
        self._lock = anyio.Lock()
        self._open = _Batch()

    async def append(self, line: str, write: Any) -> None:
        batch = self._open
        index = len(batch.lines)
        batch.lines.append(line)
        async with self._lock:
            if not batch.done:
                self._open = _Batch()
                # Shielded: the leader's cancellation must not cost the other
                # callers their records, which ride in this batch.
                with anyio.CancelScope(shield=True):
                    batch.errors = await anyio.to_thread.run_sync(_write_batch, write, batch.lines)
                    batch.done = True
        error = batch.errors.get(index)
        if error is not None:
            raise error


_DURABILITY = re.compile(r"per-write|batch|buffered|every-n:[1-9][0-9]*")
# A network store's address (``redis://127.0.0.1:6379``): kept as given, since
# ``Path`` would fold its ``//`` into ``redis:/...``, a local directory.
_ADDRESS = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


class QuirePersistence(PersistenceBackend):
    """A papyra ``PersistenceBackend`` on a quire store.

    Parameters
    ----------
    path:
        The data file (``ndjson``) or directory (``rotating``, ``segmented``),
        or a network store's address (``redis://127.0.0.1:6379`` for ``redis``);
        ignored by ``memory``.
    backend:
        A built-in backend name or the path of a ``.wasm`` backend component.
    options:
        Backend options, e.g. ``{"max-records": 100000}`` for ``rotating``.
    retention_policy:
        Papyra's ``RetentionPolicy``: applied to reads, and physically by
        ``compact()`` (quire's standard policy; sizes count bytes on disk).
    durability:
        ``per-write`` (every acknowledged record is synced; concurrent
        records share a sync), ``every-n:N``, ``batch`` or ``buffered``.
    quarantine_dir:
        Where ``recover`` in quarantine mode copies damaged originals when the
        recovery config names none (default: ``PATH.quarantine`` beside the data).
    store_options:
        More ``quire.Store`` arguments (``memory_mib``, ``timeout_seconds``, ...).

    ``record_*`` never raise: a failure is logged and counted in
    ``metrics.write_errors``. Blocking work runs in worker threads (anyio),
    so asyncio and trio event loops keep running.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        backend: str = "ndjson",
        options: Mapping[str, Any] | None = None,
        retention_policy: RetentionPolicy | None = None,
        durability: str = "per-write",
        quarantine_dir: str | Path | None = None,
        **store_options: Any,
    ) -> None:
        if not (backend in BUILTIN_BACKENDS or backend.endswith(".wasm") or "/" in backend):
            raise ValueError(
                f"backend {backend!r}: use a built-in ({', '.join(BUILTIN_BACKENDS)}) or a .wasm path"
            )
        if not _DURABILITY.fullmatch(durability):
            raise ValueError(f"durability {durability!r}: use per-write, every-n:N, batch or buffered")
        super().__init__(retention_policy=retention_policy)
        self._path: Path | str | None
        if isinstance(path, str) and _ADDRESS.match(path):
            self._path = path
        else:
            self._path = Path(path) if path is not None else None
        self._backend = backend
        self._options = dict(options or {})
        self._durability = durability
        self._quarantine_dir = Path(quarantine_dir) if quarantine_dir is not None else None
        self._store_options = store_options
        self._writer: Store | None = None
        self._writer_lock = threading.Lock()
        self._appender = _GroupAppender()
        self._closed = False
        self._name = Path(backend).stem if backend.endswith(".wasm") else backend

    # -- stores ---------------------------------------------------------------

    @property
    def path(self) -> Path | str | None:
        """The data file or directory; a network store's address as given (a string)."""
        return self._path

    @property
    def closed(self) -> bool:
        """Whether ``aclose()`` ran."""
        return self._closed

    def _open(self, **extra: Any) -> Store:
        return Store(
            self._backend,
            None if self._path is None else str(self._path),
            options=self._options,
            durability=self._durability,
            **self._store_options,
            **extra,
        )

    def _write_store(self) -> Store:
        """The read-write store, opened on first use (a read-write open takes
        the writer lock and repairs a torn tail, so startup scans run first)."""
        with self._writer_lock:
            if self._writer is None:
                if self._closed:
                    raise RuntimeError("the persistence backend is closed")
                self._writer = self._open()
            return self._writer

    def _data_exists(self) -> bool:
        if isinstance(self._path, str):
            return True  # a server: opening it read-only finds out, and changes nothing
        return self._path is not None and self._path.exists()

    def _with_reader(self, use: Any) -> Any:
        """Runs ``use(store)`` on the writer if open, else on a read-only store
        (never changes data); ``None`` when there is nothing stored yet."""
        with self._writer_lock:
            writer = self._writer
        if writer is not None:
            return use(writer)
        if not self._data_exists():
            return None
        reader = self._open(read_only=True)
        try:
            return use(reader)
        finally:
            reader.close()

    # -- writes ---------------------------------------------------------------

    def _write(self, lines: list[str]) -> None:
        try:
            self._write_store().append(lines)
        except StoreClosedError:
            # A quarantine recovery swapped the writer under this call: retry once on the new one.
            if self._closed:
                raise
            self._write_store().append(lines)

    async def _record(self, kind: str, obj: Any) -> None:
        try:
            if self._closed:
                log.debug("quire: %s dropped, the backend is closed", kind)
                return
            line = _json_line(kind, obj)
            await self._appender.append(line, self._write)
            await self._metrics_on_write_ok(records=1, bytes_written=len(line.encode("utf-8")) + 1)
        except Exception as e:  # never into the actor system
            await self._metrics_on_write_error()
            log.warning("quire: could not persist a %s record to %s: %s", kind, self._path, e)

    async def record_event(self, event: Any) -> None:  # type: ignore[override]
        await self._record("event", event)

    async def record_audit(self, report: Any) -> None:  # type: ignore[override]
        await self._record("audit", report)

    async def record_dead_letter(self, dead_letter: Any) -> None:  # type: ignore[override]
        await self._record("dead_letter", dead_letter)

    # -- reads ----------------------------------------------------------------

    def _rows(self, kind: str, limit: int | None, since: float | None) -> list[dict[str, Any]]:
        policy = self.retention or RetentionPolicy()
        cutoff = None if policy.max_age_seconds is None else time.time() - policy.max_age_seconds

        def read(store: Store) -> list[str]:
            if policy.max_records is None and policy.max_total_bytes is None:
                floor = max((t for t in (since, cutoff) if t is not None), default=None)
                return store.read_lines(kinds=[kind], since=floor, limit=limit)
            # Count and size limits hold over every kind, as Papyra's reads
            # apply them: walk the newest records until a limit is reached.
            newest = store.read_lines(since=cutoff, limit=policy.max_records, newest_first=True)
            kept, total = [], 0
            for line in newest:
                total += len(line.encode("utf-8")) + 1
                if policy.max_total_bytes is not None and total > policy.max_total_bytes:
                    break
                kept.append(line)
            kept.reverse()
            return kept

        lines = self._with_reader(read) or []
        rows = []
        for line in lines:
            row = json.loads(line)
            if row.get("kind") != kind:
                continue
            timestamp = row.get("timestamp")
            if since is not None and (not isinstance(timestamp, (int, float)) or timestamp < since):
                continue
            rows.append(row)
        if limit is not None:
            rows = rows[-limit:] if limit > 0 else []
        return rows

    async def _list(self, kind: str, model: type, limit: int | None, since: float | None) -> tuple:
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be 0 or more, not {limit}")
        rows = await anyio.to_thread.run_sync(self._rows, kind, limit, since)
        items = []
        for row in rows:
            row.pop("kind", None)
            try:
                items.append(model(**_pick_dataclass_fields(model, row)))
            except TypeError:
                # Papyra keeps a record missing fields, with its defaults.
                with_defaults = {**_MODEL_DEFAULTS[model], **_pick_dataclass_fields(model, row)}
                try:
                    items.append(model(**with_defaults))
                except TypeError:
                    continue
        return tuple(items)

    async def list_events(
        self, *, limit: int | None = None, since: float | None = None
    ) -> tuple[PersistedEvent, ...]:
        """Events, oldest first; ``limit`` keeps the newest N, ``since`` a time floor."""
        return await self._list("event", PersistedEvent, limit, since)

    async def list_audits(
        self, *, limit: int | None = None, since: float | None = None
    ) -> tuple[PersistedAudit, ...]:
        """Audit snapshots, as ``list_events``."""
        return await self._list("audit", PersistedAudit, limit, since)

    async def list_dead_letters(
        self, *, limit: int | None = None, since: float | None = None
    ) -> tuple[PersistedDeadLetter, ...]:
        """Dead letters, as ``list_events``."""
        return await self._list("dead_letter", PersistedDeadLetter, limit, since)

    # -- scan, recover, compact ----------------------------------------------

    def _scan_report(self, report: dict[str, Any] | None) -> PersistenceScanReport:
        anomalies = []
        for finding in (report or {}).get("anomalies", ()):
            kind = finding["kind"]
            if finding.get("at_address"):
                # A network store's offset is a record's address, not a byte:
                # the detail names the record (Redis: `entry 1700000000000-0`).
                detail = f"{kind}: {finding['detail']}"
            else:
                where = f"byte {finding['offset']} ({finding['length']} bytes)"
                if finding.get("line") is not None:
                    where = f"line {finding['line']}, {where}"
                detail = f"{kind} at {where}: {finding['detail']}"
            anomalies.append(
                PersistenceAnomaly(
                    type=_ANOMALY_TYPES.get(kind, PersistenceAnomalyType.CORRUPTED_LINE),
                    path=finding.get("file") or finding["unit"],
                    detail=detail,
                )
            )
        return PersistenceScanReport(backend=self._name, anomalies=tuple(anomalies))

    async def scan(self) -> PersistenceScanReport:
        """Every record validated, nothing changed (a read-only open unless
        this backend is already writing)."""
        await self._metrics_on_scan_start()
        try:
            report = await anyio.to_thread.run_sync(self._with_reader, lambda store: store.scan())
            scan = self._scan_report(report)
            count = (report or {}).get("anomaly_count", len(scan.anomalies))
            await self._metrics_on_anomalies_detected(int(count))
            return scan
        except Exception:
            await self._metrics_on_scan_error()
            raise

    def _default_quarantine_dir(self) -> Path:
        if self._quarantine_dir is not None:
            return self._quarantine_dir
        if not isinstance(self._path, Path):
            raise ValueError("quarantine needs a quarantine_dir for a backend without a local path")
        return self._path.with_name(self._path.name + ".quarantine")

    def _recover_sync(self, mode: str, quarantine_dir: Path | None) -> tuple[dict[str, Any], list]:
        """Recovery's report, and what opening the store already repaired (a
        read-write open cuts a torn tail before recovery runs)."""
        if quarantine_dir is None:
            with self._writer_lock:
                was_open = self._writer is not None
            store = self._write_store()
            cut = [] if was_open else store.open_report()
            return store.recover(mode), cut
        # The quarantine directory is granted at open: recover through a store
        # that has it. Appends wait for the writer lock until it is done.
        quarantine_dir.mkdir(parents=True, exist_ok=True)
        with self._writer_lock:
            writer, self._writer = self._writer, None
            if writer is not None:
                writer.close()
            store = self._open(quarantine_dir=str(quarantine_dir))
            try:
                return store.recover(mode), store.open_report()
            finally:
                store.close()

    async def recover(self, config: Any | None = None) -> PersistenceRecoveryReport | None:
        """Papyra's recovery: IGNORE only scans; REPAIR (and REBUILD) rewrite
        keeping every valid record; QUARANTINE copies the damaged originals to
        ``config.quarantine_dir`` first."""
        await self._metrics_on_recover_start()
        try:
            cfg = config or PersistenceRecoveryConfig()
            scan = await self.scan()
            mode = cfg.mode
            if mode is PersistenceRecoveryMode.IGNORE or not scan.has_anomalies:
                return PersistenceRecoveryReport(backend=self._name, scan=scan)
            quarantine_dir = None
            if mode is PersistenceRecoveryMode.QUARANTINE:
                quarantine_dir = Path(cfg.quarantine_dir) if cfg.quarantine_dir else self._default_quarantine_dir()
            report, cut = await anyio.to_thread.run_sync(
                self._recover_sync,
                "quarantine" if quarantine_dir is not None else "repair",
                quarantine_dir,
            )
            receipts = report.get("receipts", ())
            repaired = [str(f.get("file") or f["unit"]) for f in cut]
            repaired += [str(r.get("file") or r["unit"]) for r in receipts if r["action"] in ("rewritten", "quarantined")]
            quarantined = tuple(str(r["quarantined_to"]) for r in receipts if r.get("quarantined_to"))
            return PersistenceRecoveryReport(
                backend=self._name,
                scan=scan,
                repaired_files=tuple(dict.fromkeys(repaired)),
                quarantined_files=quarantined,
            )
        except Exception:
            await self._metrics_on_recovery_error()
            raise

    def _retention_spec(self) -> dict[str, Any]:
        policy = self.retention or RetentionPolicy()
        spec = {
            "max_records": policy.max_records,
            "max_age_seconds": policy.max_age_seconds,
            "max_bytes": policy.max_total_bytes,
        }
        if all(v is None for v in spec.values()):
            # Nothing to drop: a permanent policy reports the counts, rewrites nothing.
            return {"policies": [{"plugin": "permanent", "config": "{}"}]}
        return spec

    async def compact(self) -> CompactionReport:
        """Applies the retention policy physically (crash-safe rewrites)."""
        await self._metrics_on_compact_start()
        try:
            spec = self._retention_spec()
            reports = await anyio.to_thread.run_sync(lambda: self._write_store().compact(spec))
            first, last = reports[0], reports[-1]
            return CompactionReport(
                backend=self._name,
                before_records=first["records_before"],
                after_records=last["records_after"],
                before_bytes=first["bytes_before"],
                after_bytes=last["bytes_after"],
            )
        except Exception:
            await self._metrics_on_compact_error()
            raise

    async def aclose(self) -> None:
        """Makes every acknowledged record durable and releases the writer
        lock. Later records are dropped; reads go on (a ``memory`` store keeps
        its records for them, as Papyra's in-memory backend does)."""
        self._closed = True
        await anyio.to_thread.run_sync(self._release)

    def _release(self) -> None:
        with self._writer_lock:
            writer = self._writer
            if writer is None:
                return
            if not writer.backend["persistent"]:
                writer.flush()
                return
            self._writer = None
        writer.close()


_MODEL_DEFAULTS: dict[type, dict[str, Any]] = {
    PersistedEvent: {"system_id": "local", "actor_address": None, "event_type": "", "payload": {}},
    PersistedAudit: {
        "system_id": "local",
        "total_actors": 0,
        "alive_actors": 0,
        "stopping_actors": 0,
        "restarting_actors": 0,
        "registry_size": 0,
        "registry_orphans": (),
        "registry_dead": (),
        "dead_letters_count": 0,
    },
    PersistedDeadLetter: {"system_id": "local", "target": None, "message_type": "", "payload": None},
}
