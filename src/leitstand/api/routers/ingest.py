"""The HTTP batch ingest endpoint: JSON, Arrow IPC or Parquet bodies of samples, states or counts."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from leitstand.access.policy import ReadScope
from leitstand.api.body import read_body
from leitstand.api.deps import own_data, require, runtime
from leitstand.api.errors import AUTHENTICATED
from leitstand.api.runtime import Runtime
from leitstand.domain.assets import descendants
from leitstand.domain.records import RecordKind
from leitstand.domain.tenancy import WRITERS, Principal
from leitstand.ingest.decode import CONTENT_TYPES

router = APIRouter(prefix="/api/v1", tags=["ingest"], responses=AUTHENTICATED)

# A record that is not an object is dead-lettered on its own; its neighbours are stored.
_RECORDS = {"type": "array", "items": {"description": "A record object (see docs/api.md)."}}
_JSON = {
    "oneOf": [
        _RECORDS,
        {"type": "object", "required": ["records"], "properties": {"records": _RECORDS}},
    ]
}
_BINARY = {"type": "string", "format": "binary"}
_BODY = {
    "requestBody": {
        "required": True,
        "content": {t: {"schema": _JSON if t == "application/json" else _BINARY} for t in CONTENT_TYPES},
    }
}


@router.post("/ingest/{kind}", openapi_extra=_BODY)
async def ingest(
    kind: RecordKind,
    request: Request,
    who: Principal = Depends(require(WRITERS)),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    """Store a batch. Answers after the good records are durably written; bad ones are dead-lettered
    or quarantined with a reason, and listed in `errors` by their index in the request. A gateway may
    send records of its own site's assets only. Each tenant has an ingest quota in records (429)."""
    content_type = request.headers.get("content-type", "")
    # JSON is the small-batch path: parsed, it takes many times its size in Python objects
    is_json = content_type.split(";")[0].strip().lower() == "application/json"
    limit = rt.settings.max_json_request_bytes if is_json else rt.settings.max_request_bytes
    body = await read_body(request, limit)

    only_assets = frozenset(descendants(rt.asset_cache.assets(who.tenant_id), who.site)) if who.site else None

    def quota(records: int) -> None:
        rt.limits.ingest_records.take(who.tenant_id, records)

    future = await run_in_threadpool(
        rt.pipeline.submit_body,
        who.tenant_id,
        kind,
        body,
        content_type,
        rt.settings.max_request_records,
        only_assets,
        quota,
    )
    result = await asyncio.wrap_future(future)
    return result.as_dict()


@router.get("/records")
def records(scope: ReadScope = Depends(own_data), rt: Runtime = Depends(runtime)) -> dict[str, Any]:
    """How many records of each kind the caller's tenant has stored, and their first and last `ts`."""
    out: dict[str, Any] = {}
    for kind in RecordKind:
        first, last = rt.events.time_range(kind, scope.tenant)
        out[kind.value] = {
            "count": rt.events.record_count(kind, scope.tenant),
            "first_ts": first.isoformat() if first else None,
            "last_ts": last.isoformat() if last else None,
        }
    return out


@router.get("/rejects")
def rejects(
    outcome: str | None = Query(None, pattern="^(dead_letter|quarantine)$"),
    limit: int = Query(100, ge=1, le=10_000),
    scope: ReadScope = Depends(own_data),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    """The newest dead-lettered and quarantined records of the caller's tenant, with their reasons."""
    table = rt.events.rejects(scope.tenant, limit=limit, outcome=outcome)
    rows = table.drop_columns(["tenant"]).to_pylist()
    for row in rows:
        row["received_at"] = row["received_at"].isoformat()
    return {"rejects": rows}
