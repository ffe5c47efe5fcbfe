"""The server heartbeat published on the hub's "heartbeat" topic.

Ticks are scheduled against the loop clock (start + n·interval), not "sleep interval after
the previous tick", so a slow tick does not push every later one back; `ts` is the wall
clock at publication, which lets clients measure delivery lag.
"""

from __future__ import annotations

import asyncio
import time

from app.hub.broker import Hub

__all__ = ["HEARTBEAT_TOPIC", "run_heartbeat"]

HEARTBEAT_TOPIC = "heartbeat"


async def run_heartbeat(hub: Hub, interval: float) -> None:
    """Publish `{"type":"heartbeat","seq","ts"}` (+ per-subscriber "dropped") forever."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    seq = 0
    while True:
        seq += 1
        delay = start + seq * interval - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        else:  # fell behind (loop starved): skip missed ticks instead of bursting
            start = loop.time() - seq * interval
        hub.publish({"type": HEARTBEAT_TOPIC, "seq": seq, "ts": time.time()}, report_drops=True)
