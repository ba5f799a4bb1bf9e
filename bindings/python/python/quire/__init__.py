"""quire: durable persistence, retention, compaction, scanning and recovery,
with every storage backend and retention policy a sandboxed WebAssembly
component.

    >>> import quire
    >>> store = quire.Store("ndjson", "events.ndjson")
    >>> store.append([{"kind": "event", "system_id": "local", "timestamp": 1.0}])
    1
    >>> store.read(kinds=["event"], limit=10)

Papyra users: ``quire.papyra.QuirePersistence`` is a persistence backend
for ``papyra.ActorSystem``.
"""

from quire._quire import (
    BUILTIN_BACKENDS,
    BUILTIN_POLICIES,
    WIT_VERSION,
    InvalidRecordError,
    NotRecoveredError,
    PluginError,
    PluginFaultError,
    PluginLoadError,
    QuireError,
    Store,
    StoreClosedError,
    StoreLockedError,
    StorePathError,
    UnsupportedError,
    UsageError,
    __version__,
)

__all__ = [
    "BUILTIN_BACKENDS",
    "BUILTIN_POLICIES",
    "WIT_VERSION",
    "InvalidRecordError",
    "NotRecoveredError",
    "PluginError",
    "PluginFaultError",
    "PluginLoadError",
    "QuireError",
    "Store",
    "StoreClosedError",
    "StoreLockedError",
    "StorePathError",
    "UnsupportedError",
    "UsageError",
    "__version__",
]
