"""A small actor system workload the Papyra tests share."""

from __future__ import annotations

import contextlib

from papyra import ActorSystem
from papyra.actor import Actor
from papyra.exceptions import ActorStopped


class Counter(Actor):
    """Counts messages; `boom` makes it fail."""

    def __init__(self) -> None:
        self.seen = 0

    async def receive(self, message):
        if message == "boom":
            raise RuntimeError("boom")
        self.seen += 1
        return self.seen


async def drive(system: ActorSystem, actors: int = 3, messages: int = 5) -> None:
    """Events (started, stopped), one audit, one dead letter."""
    refs = [system.spawn(Counter, name=f"counter-{i}") for i in range(actors)]
    for ref in refs:
        for _ in range(messages):
            await ref.ask("tick")
    system.audit()
    await system.stop(refs[0])
    with contextlib.suppress(ActorStopped):
        await refs[0].tell("after stop")  # a dead letter
