"""In-process broadcast hub: topics, bounded per-subscriber queues, counted drops."""

from __future__ import annotations

from app.hub.broker import Hub, HubFull, Message, Subscription
from app.hub.heartbeat import HEARTBEAT_TOPIC, run_heartbeat
from app.hub.metrics import HubCollector

__all__ = ["HEARTBEAT_TOPIC", "Hub", "HubCollector", "HubFull", "Message", "Subscription",
           "run_heartbeat"]
