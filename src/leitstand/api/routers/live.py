"""Live machine states and a Server-Sent Events stream of snapshots, pushed after new data commits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from leitstand.access.policy import ReadScope
from leitstand.api.deps import PROVIDER_QUERY, credential_secret, reading, runtime
from leitstand.api.errors import AUTHENTICATED
from leitstand.api.live import LiveHub, snapshot
from leitstand.api.runtime import Runtime
from leitstand.domain.agreements import DataKind
from leitstand.domain.errors import Forbidden, NotFound, Unauthenticated

router = APIRouter(prefix="/api/v1/live", tags=["live"], responses=AUTHENTICATED)

KEEPALIVE_S = 15.0


@router.get("/snapshot")
def live_snapshot(
    hours: float = Query(24, ge=0.001, le=24 * 31),
    scope: ReadScope = Depends(reading(DataKind.LIVE)),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    """OEE over the last `hours` and the current state of every machine (the live pages' data). Data
    shared without the `kpi` kind comes without OEE rows."""
    return shown(scope, snapshot(rt, scope.tenant, scope.within, hours))


def shown(scope: ReadScope, data: dict[str, Any]) -> dict[str, Any]:
    """What of a snapshot the scope may see, marked with whose data it is."""
    if scope.agreement is not None and DataKind.KPI not in scope.agreement.kinds:
        data = {**data, "oee": []}
    return {"source": scope.source(), **data}


@router.get("/stream", response_class=StreamingResponse)
async def live_stream(
    request: Request,
    hours: float = Query(24, ge=0.001, le=24 * 31),
    provider: str | None = PROVIDER_QUERY,
    scope: ReadScope = Depends(reading(DataKind.LIVE)),
    rt: Runtime = Depends(runtime),
) -> StreamingResponse:
    """`text/event-stream` of `snapshot` events: one at once, then one after each commit (rate-limited).
    The stream ends with an `end` event once the credential it was opened with is no longer valid, or
    the agreement that shares the data is no longer in force."""
    hub: LiveHub = request.app.state.live
    secret = credential_secret(request) or ""
    tenant, within = scope.tenant, scope.within

    def still_allowed() -> None:
        who = rt.identity.authenticate(secret)
        rt.access.read(who, DataKind.LIVE, provider, within, request.url.path, audit=False)

    async def events() -> AsyncIterator[bytes]:
        while not await request.is_disconnected():
            try:  # a logout, an expiry or a revocation must end the flow of data, not only new requests
                await run_in_threadpool(still_allowed)
            except (Unauthenticated, NotFound, Forbidden) as exc:
                reason = "unauthenticated" if isinstance(exc, Unauthenticated) else "not_shared"
                yield b'event: end\ndata: {"reason": "' + reason.encode() + b'"}\n\n'
                return
            seen = hub.generation(tenant)
            data = await hub.snapshot(
                (tenant, within, hours),
                seen,
                rt.settings.live_interval_s,
                lambda: run_in_threadpool(snapshot, rt, tenant, within, hours),
            )
            yield b"event: snapshot\ndata: " + orjson.dumps(shown(scope, data)) + b"\n\n"
            await asyncio.sleep(rt.settings.live_interval_s)
            while not await hub.wait(tenant, seen, KEEPALIVE_S):
                if await request.is_disconnected():
                    return
                yield b": keepalive\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})
