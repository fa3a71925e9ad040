"""Live machine states and a Server-Sent Events stream of snapshots, pushed after new data commits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from leitstand.api.deps import principal, runtime
from leitstand.api.live import LiveHub, snapshot
from leitstand.api.runtime import Runtime
from leitstand.domain.errors import NotFound
from leitstand.domain.tenancy import Principal

router = APIRouter(prefix="/api/v1/live", tags=["live"])

KEEPALIVE_S = 15.0


def _check_within(rt: Runtime, tenant: str, within: str | None) -> None:
    if within is not None and within not in {a.id for a in rt.asset_cache.assets(tenant)}:
        raise NotFound(f"asset {within!r} not found")


@router.get("/snapshot")
def live_snapshot(
    within: str | None = Query(None, description="Only this asset and what is below it."),
    hours: float = Query(24, gt=0, le=24 * 31),
    who: Principal = Depends(principal),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    """OEE over the last `hours` and the current state of every machine (the live pages' data)."""
    _check_within(rt, who.tenant_id, within)
    return snapshot(rt, who.tenant_id, within, hours)


@router.get("/stream", response_class=StreamingResponse)
async def live_stream(
    request: Request,
    within: str | None = Query(None),
    hours: float = Query(24, gt=0, le=24 * 31),
    who: Principal = Depends(principal),
    rt: Runtime = Depends(runtime),
) -> StreamingResponse:
    """`text/event-stream` of `snapshot` events: one at once, then one after each commit (rate-limited)."""
    _check_within(rt, who.tenant_id, within)
    hub: LiveHub = request.app.state.live

    async def events() -> AsyncIterator[bytes]:
        while not await request.is_disconnected():
            seen = hub.generation(who.tenant_id)
            data = await run_in_threadpool(snapshot, rt, who.tenant_id, within, hours)
            yield b"event: snapshot\ndata: " + orjson.dumps(data) + b"\n\n"
            await asyncio.sleep(rt.settings.live_interval_s)
            while not await hub.wait(who.tenant_id, seen, KEEPALIVE_S):
                if await request.is_disconnected():
                    return
                yield b": keepalive\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})
