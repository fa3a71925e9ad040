"""Live machine states and a Server-Sent Events stream of snapshots, pushed after new data commits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from leitstand.api.deps import credential_secret, principal, runtime
from leitstand.api.live import LiveHub, snapshot
from leitstand.api.runtime import Runtime
from leitstand.domain.errors import Unauthenticated
from leitstand.domain.tenancy import Principal

router = APIRouter(prefix="/api/v1/live", tags=["live"])

KEEPALIVE_S = 15.0


@router.get("/snapshot")
def live_snapshot(
    within: str | None = Query(None, description="Only this asset and what is below it."),
    hours: float = Query(24, gt=0, le=24 * 31),
    who: Principal = Depends(principal),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    """OEE over the last `hours` and the current state of every machine (the live pages' data)."""
    rt.oee.check_within(who.tenant_id, within)
    return snapshot(rt, who.tenant_id, within, hours)


@router.get("/stream", response_class=StreamingResponse)
async def live_stream(
    request: Request,
    within: str | None = Query(None),
    hours: float = Query(24, gt=0, le=24 * 31),
    who: Principal = Depends(principal),
    rt: Runtime = Depends(runtime),
) -> StreamingResponse:
    """`text/event-stream` of `snapshot` events: one at once, then one after each commit (rate-limited).
    The stream ends with an `end` event once the credential it was opened with is no longer valid."""
    rt.oee.check_within(who.tenant_id, within)
    hub: LiveHub = request.app.state.live
    secret = credential_secret(request) or ""

    async def events() -> AsyncIterator[bytes]:
        while not await request.is_disconnected():
            try:  # a logout or an expiry must end the flow of data, not only new requests
                await run_in_threadpool(rt.identity.authenticate, secret)
            except Unauthenticated:
                yield b'event: end\ndata: {"reason": "unauthenticated"}\n\n'
                return
            seen = hub.generation(who.tenant_id)
            data = await hub.snapshot(
                (who.tenant_id, within, hours),
                seen,
                rt.settings.live_interval_s,
                lambda: run_in_threadpool(snapshot, rt, who.tenant_id, within, hours),
            )
            yield b"event: snapshot\ndata: " + orjson.dumps(data) + b"\n\n"
            await asyncio.sleep(rt.settings.live_interval_s)
            while not await hub.wait(who.tenant_id, seen, KEEPALIVE_S):
                if await request.is_disconnected():
                    return
                yield b": keepalive\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})
