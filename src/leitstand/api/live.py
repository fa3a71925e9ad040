"""Live updates: the writer's commits wake the SSE streams of the tenants whose data changed."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from leitstand.api.runtime import Runtime
from leitstand.domain.assets import AssetLevel
from leitstand.kpi.states import current_states

MAX_SHARED_SNAPSHOTS = 256


class LiveHub:
    """Per tenant, a commit counter and an event that is set and replaced on every commit.

    A stream remembers the counter it last showed, so a commit that lands while the stream is busy
    building or pacing a snapshot is not missed.
    """

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self._generation: dict[str, int] = defaultdict(int)
        self._snapshots: dict[tuple[str, str | None, float], tuple[int, float, dict[str, Any]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def committed(self, tenants: set[str]) -> None:
        """Called from the writer thread."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake, tenants)

    def _wake(self, tenants: set[str]) -> None:
        for tenant in tenants:
            self._generation[tenant] += 1
            event = self._events.pop(tenant, None)
            if event is not None:
                event.set()

    async def snapshot(
        self,
        key: tuple[str, str | None, float],
        generation: int,
        max_age_s: float,
        compute: Callable[[], Awaitable[dict[str, Any]]],
    ) -> dict[str, Any]:
        """The snapshot for `key`, shared by every stream that asks within `max_age_s` of the same commit
        generation: a hundred viewers of one plant cost one query, not a hundred."""
        cached = self._snapshots.get(key)
        now = time.monotonic()
        if cached is not None and cached[0] == generation and now - cached[1] < max_age_s:
            return cached[2]
        data = await compute()
        self._snapshots.pop(key, None)
        self._snapshots[key] = (generation, now, data)
        while len(self._snapshots) > MAX_SHARED_SNAPSHOTS:  # oldest first: dicts keep insertion order
            self._snapshots.pop(next(iter(self._snapshots)))
        return data

    def generation(self, tenant: str) -> int:
        """How many commits of `tenant` this hub has seen."""
        return self._generation[tenant]

    async def wait(self, tenant: str, seen: int, timeout: float) -> bool:
        """Wait until a commit of `tenant` newer than generation `seen`; False on timeout."""
        if self._generation[tenant] != seen:
            return True
        event = self._events[tenant]
        try:
            await asyncio.wait_for(event.wait(), timeout)
            return True
        except TimeoutError:
            return False


def snapshot(rt: Runtime, tenant: str, within: str | None, hours: float) -> dict[str, Any]:
    """What a live page shows: OEE rows over the last `hours`, and the current state of each machine."""
    now = datetime.now(UTC)
    start = now - timedelta(hours=hours)
    rows = rt.oee.compute(tenant, start, now, within=within).rows
    assets = rt.asset_cache.assets(tenant)
    machines = {a.id: a for a in assets if a.level is AssetLevel.MACHINE}
    keep = {r["id"] for r in rows if r["level"] == "machine"}
    states = [
        {**s, "since": s["since"].isoformat()}
        for s in current_states(rt.events, tenant, now - timedelta(seconds=rt.settings.state_lookback_s), now)
        if s["asset_id"] in machines and s["asset_id"] in keep
    ]
    site_of = {
        r["id"]: r["path"].split("/")[1] if r["path"].count("/") >= 1 else r["id"]
        for r in rows
        if r["level"] == "machine"
    }
    state_counts: dict[str, dict[str, int]] = {}
    for s in states:
        site = site_of.get(s["asset_id"], "")
        counts = state_counts.setdefault(site, {})
        counts[s["state"]] = counts.get(s["state"], 0) + 1
    return {
        "generated_at": now.isoformat(),
        "window": {"start": start.isoformat(), "end": now.isoformat(), "hours": hours},
        "oee": rows,
        "states": states,
        "state_counts": state_counts,
    }
