"""The filter rule set's source of truth: the database, one row per generation.

Why: a rule set accepted by `PUT /api/v2/rules` is acknowledged data. Held only in memory, a
control-plane restart forgot it — `GET /rules` answered an empty generation 0 while the
dataplanes kept enforcing the old set, and the next change restarted the generation count.
Now a replacement is committed before it is acknowledged or pushed, and start-up loads the
newest generation and pushes it to every dataplane that connects.

Layering: the API calls `RuleStore.replace`; the store writes through `Database.run` (a
worker thread) and then hands the set to the uplink service, which pushes it downstream.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import fields
from typing import Any, Literal

from app.db import Database
from app.db.audit import add_audit
from app.ingest.rules import FilterRuleSet, Rule, RuleSpecError, rule_json, to_proto
from app.ingest.service import UplinkService
from app.types import Principal

__all__ = ["HISTORY", "RuleStore"]

log = logging.getLogger(__name__)

HISTORY = 50  # generations kept for audit; older rows are pruned by each replacement
_RULE_FIELDS = frozenset(f.name for f in fields(Rule))


def _decode(row: Any) -> FilterRuleSet:
    # Keys a newer version may add are ignored rather than stopping start-up.
    rules = [Rule(**{k: v for k, v in item.items() if k in _RULE_FIELDS})
             for item in json.loads(row.rules or "[]")]
    return FilterRuleSet(generation=int(row.generation), default_action=row.default_action,
                         rules=rules)


def _newest(dal: Any) -> FilterRuleSet | None:
    table = dal.rule_set
    row = dal(table).select(orderby=~table.generation, limitby=(0, 1)).first()
    return _decode(row) if row is not None else None


class RuleStore:
    """Loads and replaces the rule set; holds the current one and hands it to the uplink."""

    def __init__(self, db: Database, uplink: UplinkService) -> None:
        self._db = db
        self._uplink = uplink
        self._current = FilterRuleSet()
        self._lock = asyncio.Lock()  # generations commit and reach the uplink in order
        # Told each generation this instance commits (the cluster relay tells the others).
        self.on_replaced: list[Callable[[int], None]] = []

    def current(self) -> FilterRuleSet:
        return self._current

    async def load(self) -> FilterRuleSet | None:
        """Make the newest stored generation current (start-up); None if there is none.

        A stored set this version can no longer express is shown by `GET /rules` but not
        pushed (dataplanes keep what they enforce) and logged; the control plane still starts.
        """
        rule_set = await self._db.run(_newest)
        if rule_set is None:
            return None
        self._current = rule_set
        try:
            message = await asyncio.to_thread(to_proto, rule_set)
        except RuleSpecError as error:
            log.error("stored rule set generation %d is not pushed: %s (replace it with "
                      "PUT /api/v2/rules)", rule_set.generation, error)
            return rule_set
        self._uplink.set_rules(message)
        log.info("rule set generation %d loaded (%d rules)", rule_set.generation,
                 len(rule_set.rules))
        return rule_set

    async def replace(self, default_action: Literal["allow", "deny"], rules: list[Rule],
                      actor: Principal | None, ip: str = "") -> FilterRuleSet:
        """Validate, commit as the next generation (with its audit row), then push; returns
        the stored set.

        Raises `RuleSpecError` for a rule set the XDP maps cannot hold (nothing is stored) and
        the database errors of `Database.run` (nothing is pushed). Validation and the wire form
        are built once, off the event loop (100k rules take ~1 s).
        """
        message = await asyncio.to_thread(to_proto, FilterRuleSet(0, default_action, rules))
        stored = json.dumps([rule_json(rule) for rule in rules], separators=(",", ":"))

        def write(dal: Any) -> FilterRuleSet:
            table = dal.rule_set  # the newest generation of any control plane on this database
            generation = (dal(table).select(table.generation.max()).first()[
                table.generation.max()] or 0) + 1
            table.insert(
                generation=generation, default_action=default_action, rules=stored,
                actor_user_id=actor.user_id if actor else None,
                actor_client_id=actor.client_id if actor else None,
            )
            dal(dal.rule_set.generation <= generation - HISTORY).delete()
            add_audit(dal, "rules_replace", actor_user_id=actor.user_id if actor else None,
                      actor_client_id=actor.client_id if actor else None,
                      target=f"rule_set:{generation}", ip=ip,
                      details={"rules": len(rules), "default_action": default_action})
            return FilterRuleSet(generation, default_action, list(rules))

        async with self._lock:
            rule_set = await self._db.run(write)
            message.generation = rule_set.generation
            self._current = rule_set
            self._uplink.set_rules(message)
        for notify in self.on_replaced:
            notify(rule_set.generation)
        return rule_set

    async def refresh(self, generation: int) -> bool:
        """Another control-plane instance committed `generation`: load the newest stored set
        and push it to this instance's dataplanes, unless it is current already. True when
        a newer set was loaded."""
        async with self._lock:
            if generation <= self._current.generation:
                return False
            before = self._current.generation
            await self.load()
            return self._current.generation > before
