"""Child process of test_kill.py: an ActorSystem on QuirePersistence that
records numbered events and prints how far every record is acknowledged,
until it is killed."""

import sys

import anyio
from papyra import ActorSystem
from papyra.actor import Actor
from papyra.persistence.models import PersistedEvent
from quire.papyra import QuirePersistence


class Idle(Actor):
    async def receive(self, message):
        return message


async def main(path: str, backend: str, run: str) -> None:
    store = QuirePersistence(path, backend=backend, options={"max-records": 150} if backend == "rotating" else None)
    async with ActorSystem(system_id="killed", persistence=store) as system:
        seq = 0
        while True:
            async with anyio.create_task_group() as tg:
                for i in range(seq, seq + 25):
                    event = PersistedEvent("killed", "papyra://killed/w", "Acked", {"run": int(run), "seq": i}, float(i))
                    tg.start_soon(store.record_event, event)
            if store.metrics.snapshot()["write_errors"]:
                print("write error", flush=True)
                return
            seq += 25
            print(f"acked {seq}", flush=True)  # records 0..seq-1 returned: durable
            system.spawn(Idle)  # the system's own events interleave


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], sys.argv[3])
