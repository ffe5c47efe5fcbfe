"""The broadcast hub: bounded queues, drop-oldest with per-subscriber counts, one serialisation."""

from __future__ import annotations

import asyncio

import orjson

from app.hub import Hub, run_heartbeat


async def test_publish_reaches_each_topic_subscriber_once() -> None:
    hub = Hub(queue_size=4)
    stats = hub.subscribe(["stats"])
    both = hub.subscribe(["stats", "heartbeat"])
    assert hub.publish({"type": "stats", "n": 1}) == 2
    assert hub.publish({"type": "heartbeat", "seq": 1}) == 1
    assert hub.publish({"type": "other"}) == 0
    assert orjson.loads(await stats.next_text() or "") == {"type": "stats", "n": 1}
    assert orjson.loads(await both.next_text() or "")["type"] == "stats"
    assert orjson.loads(await both.next_text() or "")["type"] == "heartbeat"
    assert hub.subscriber_count == 2


async def test_one_serialisation_shared_by_subscribers() -> None:
    hub = Hub(queue_size=4)
    a, b = hub.subscribe(["t"]), hub.subscribe(["t"])
    hub.publish({"x": 1}, "t")
    assert a._queue[0] is b._queue[0]  # the same Message object, serialised once


async def test_slow_subscriber_drops_oldest_and_reports_count() -> None:
    hub = Hub(queue_size=3)
    slow = hub.subscribe(["heartbeat"])
    fast = hub.subscribe(["heartbeat"], maxsize=100)
    for seq in range(1, 11):
        hub.publish({"type": "heartbeat", "seq": seq}, report_drops=True)
    assert slow.dropped == 7 and fast.dropped == 0
    assert hub.dropped_total == 7
    first = orjson.loads(await slow.next_text() or "")
    assert first == {"type": "heartbeat", "seq": 8, "dropped": 7}  # newest kept
    assert orjson.loads(await fast.next_text() or "")["dropped"] == 0


async def test_close_all_ends_readers_with_code() -> None:
    hub = Hub()
    sub = hub.subscribe(["t"])
    reader = asyncio.create_task(sub.next_text())
    await asyncio.sleep(0)
    hub.close_all(1001)
    assert await asyncio.wait_for(reader, 1) is None
    assert sub.close_code == 1001 and hub.subscriber_count == 0
    hub.publish({"type": "t"})  # no subscriber left: nothing queued
    assert not sub._queue


async def test_heartbeat_keeps_cadence() -> None:
    hub = Hub()
    sub = hub.subscribe(["heartbeat"])
    task = asyncio.create_task(run_heartbeat(hub, 0.02))
    try:
        seqs = []
        for _ in range(5):
            text = await asyncio.wait_for(sub.next_text(), 1)
            seqs.append(orjson.loads(text or "")["seq"])
    finally:
        task.cancel()
    assert seqs == [1, 2, 3, 4, 5]
