"""A full downlink queue delays a rule set but never loses it; the newest one wins."""

from __future__ import annotations

from app.ingest.service import _OUT_QUEUE, Session


def test_full_queue_keeps_the_newest_state() -> None:
    session = Session(node_id="n", instance_id="i")
    for seq in range(_OUT_QUEUE):
        session.out.put_nowait(("ack", seq))  # the reader filled the queue with acks
    session.send_state("rules", ("rules", 1))
    session.send_state("rules", ("rules", 2))
    session.send_state("config", ("config", 1))
    assert session.superseded == 1

    written: list[object] = []
    while not session.out.empty():  # what the writer task does
        message = session.out.get_nowait()
        if isinstance(message, tuple):
            written.append(message)
        written.extend(session.take_states())
    assert written[0] == ("ack", 0)
    assert ("rules", 2) in written and ("config", 1) in written
    assert ("rules", 1) not in written
    assert len(written) == _OUT_QUEUE + 2
