"""Current machine states: the newest state change of each machine, and since when it holds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from leitstand.store.interfaces import EventStore

# The whole newest row per machine: its reason may be NULL, and must not fall back to an older one.
CURRENT_STATES_SQL = """
SELECT asset_id, state, reason, since FROM (
    SELECT asset_id, state, reason, ts AS since,
           row_number() OVER (PARTITION BY asset_id ORDER BY ts DESC) AS newest
    FROM states
    WHERE tenant = $tenant AND ts >= $since AND ts <= $now
) WHERE newest = 1
ORDER BY asset_id
"""


def current_states(events: EventStore, tenant: str, since: datetime, now: datetime) -> list[dict[str, Any]]:
    """One row per machine that changed state in [since, now]: its state, reason and the change's time."""
    table = events.query(CURRENT_STATES_SQL, {"tenant": tenant, "since": since, "now": now})
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows
