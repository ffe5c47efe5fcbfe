"""In-process broadcast hub: topics, bounded per-subscriber queues, counted drops."""

from __future__ import annotations

from app.hub.broker import Hub, Message, Subscription
from app.hub.heartbeat import HEARTBEAT_TOPIC, run_heartbeat

__all__ = ["HEARTBEAT_TOPIC", "Hub", "Message", "Subscription", "run_heartbeat"]
