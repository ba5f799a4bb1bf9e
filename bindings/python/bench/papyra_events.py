"""Events/s of a papyra ActorSystem: papyra's JSON file backend against
QuirePersistence (ndjson and segmented), in the same run.

    python bindings/python/bench/papyra_events.py [--actors 2000]

Each run spawns and stops ACTORS actors (an ActorStarted and an ActorStopped
event each) and sends each one message, then closes the system, which waits
for every record. Papyra's JSON backend opens, appends and closes the file
per record and never syncs; QuirePersistence is shown durable per write
(every record synced before it is acknowledged; concurrent records share a
sync) and with `batch` durability (written, synced at close).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import anyio
from papyra import ActorSystem
from papyra.actor import Actor
from papyra.persistence import JsonFilePersistence
from quire.papyra import QuirePersistence


class Echo(Actor):
    async def receive(self, message):
        return message


async def drive(persistence, actors: int) -> tuple[float, int]:
    started = time.perf_counter()
    async with ActorSystem(system_id="bench", persistence=persistence) as system:
        refs = [system.spawn(Echo) for _ in range(actors)]
        for ref in refs:
            await ref.ask("ping")
        for ref in refs:
            await system.stop(ref)
    # Leaving the block waited for every record task and closed the backend.
    elapsed = time.perf_counter() - started
    return elapsed, len(await persistence.list_events())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actors", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        runs = [
            ("papyra JsonFilePersistence (no sync)", lambda: JsonFilePersistence(tmp / "papyra.ndjson")),
            ("quire ndjson, per-write (synced)", lambda: QuirePersistence(tmp / "q1.ndjson")),
            ("quire ndjson, batch", lambda: QuirePersistence(tmp / "q2.ndjson", durability="batch")),
            ("quire segmented, per-write (synced)", lambda: QuirePersistence(tmp / "q3", backend="segmented")),
            ("quire segmented, batch", lambda: QuirePersistence(tmp / "q4", backend="segmented", durability="batch")),
        ]
        baseline = None
        print(f"{'backend':40} {'events':>7} {'seconds':>8} {'events/s':>10} {'vs papyra':>10}")
        for name, make in runs:
            elapsed, events = anyio.run(drive, make(), args.actors)
            rate = events / elapsed
            baseline = baseline or rate
            print(f"{name:40} {events:7d} {elapsed:8.3f} {rate:10.0f} {rate / baseline:9.2f}x", flush=True)


if __name__ == "__main__":
    main()
