"""A full downlink queue delays a rule set but never loses it; the newest one wins."""

from __future__ import annotations

import asyncio
from typing import Any

from app.ingest.service import _OUT_QUEUE, Session, UplinkService
from app.ingest.state import IngestState


class _Context:
    """The one method of grpc.aio's ServicerContext the writer uses."""

    def __init__(self) -> None:
        self.written: list[Any] = []

    async def write(self, message: Any) -> None:
        self.written.append(message)


async def test_full_queue_keeps_the_newest_state() -> None:
    session = Session(node_id="n", instance_id="i")
    for seq in range(_OUT_QUEUE):
        session.out.put_nowait(("ack", seq))  # the reader filled the queue with acks
    session.send_state("rules", ("rules", 1))
    session.send_state("rules", ("rules", 2))
    session.send_state("config", ("config", 1))

    context = _Context()
    service = UplinkService(IngestState(), lambda: None)
    writer = asyncio.create_task(service._write(session, context))  # type: ignore[arg-type]
    for _ in range(100):
        if session.out.empty() and not session.states:
            break
        await asyncio.sleep(0)
    writer.cancel()
    written = context.written
    assert written[0] == ("ack", 0)  # the queue's order is kept...
    assert ("rules", 2) in written and ("config", 1) in written  # ...no state is lost...
    assert ("rules", 1) not in written  # ...and a superseded one is not sent
    assert len(written) == _OUT_QUEUE + 2
