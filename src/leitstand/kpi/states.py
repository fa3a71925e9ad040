"""Current machine states: the newest state change of each machine, and since when it holds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from leitstand.store.interfaces import EventStore

CURRENT_STATES_SQL = """
SELECT asset_id, arg_max(state, ts) AS state, arg_max(reason, ts) AS reason, max(ts) AS since
FROM states
WHERE tenant = $tenant AND ts >= $since AND ts <= $now
GROUP BY asset_id
ORDER BY asset_id
"""


def current_states(events: EventStore, tenant: str, since: datetime, now: datetime) -> list[dict[str, Any]]:
    """One row per machine that changed state in [since, now]: its state, reason and the change's time."""
    table = events.query(CURRENT_STATES_SQL, {"tenant": tenant, "since": since, "now": now})
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows
