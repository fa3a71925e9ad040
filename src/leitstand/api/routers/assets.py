"""The asset model: list, read, and import (YAML or JSON) per tenant."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from leitstand.access.policy import ReadScope
from leitstand.api.body import read_body
from leitstand.api.deps import reading, require, runtime
from leitstand.api.documents import load_document
from leitstand.api.errors import AUTHENTICATED
from leitstand.api.runtime import Runtime
from leitstand.domain.agreements import DataKind
from leitstand.domain.assets import ID_PATTERN, Asset, AssetLevel, parse_asset_model
from leitstand.domain.errors import NotFound
from leitstand.domain.tenancy import MODELLERS, Principal

router = APIRouter(prefix="/api/v1/assets", tags=["assets"], responses=AUTHENTICATED)


def asset_dict(asset: Asset) -> dict[str, Any]:
    return {
        "id": asset.id,
        "level": asset.level.value,
        "name": asset.name,
        "parent_id": asset.parent_id,
        "path": asset.path,
        "machine_type": asset.machine_type,
        "timezone": asset.timezone,
        "ideal_cycle_s": asset.ideal_cycle_s,
        "signals": [{"name": s.name, "unit": s.unit, "description": s.description} for s in asset.signals],
    }


@router.get("")
def list_assets(
    level: AssetLevel | None = None,
    scope: ReadScope = Depends(reading(DataKind.ASSETS)),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    """The assets in scope (your tenant's, or those shared with you), in path order; optionally one level."""
    assets = scope.visible(rt.asset_cache.assets(scope.tenant))
    return {
        "source": scope.source(),
        "assets": [asset_dict(a) for a in assets if level is None or a.level is level],
    }


@router.get("/{asset_id}")
def get_asset(
    asset_id: str, scope: ReadScope = Depends(reading(DataKind.ASSETS)), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    """One asset in scope; 404 for unknown, foreign and unshared ids alike."""
    for asset in scope.visible(rt.asset_cache.assets(scope.tenant)):
        if asset.id == asset_id:
            return {"source": scope.source(), **asset_dict(asset)}
    raise NotFound(f"asset {asset_id!r} not found")


_ID = {"type": "string", "pattern": f"^{ID_PATTERN.pattern}$"}
_NODE = {"type": "object", "required": ["id"], "properties": {"id": _ID, "name": {"type": "string"}}}
# The outline of docs/data-model.md; the import checks the rest (references, calendars, uniqueness).
_MODEL = {
    "type": "object",
    "required": ["enterprise"],
    "properties": {
        "enterprise": _NODE,
        "sites": {"type": "array", "items": _NODE},
        "products": {
            "type": "array",
            "items": {"type": "object", "required": ["id"], "properties": {"id": _ID}},
        },
    },
}
_MODEL_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/yaml": {"schema": _MODEL}, "application/json": {"schema": _MODEL}},
    }
}


@router.post("", openapi_extra=_MODEL_BODY)
async def import_assets(
    request: Request, who: Principal = Depends(require(MODELLERS)), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    """Import (upsert) an asset model document into the caller's tenant; idempotent."""
    body = await read_body(request, rt.settings.max_request_bytes)
    media = request.headers.get("content-type", "application/json").split(";")[0].strip()

    def parse_and_import() -> dict[str, int]:  # CPU and database work: off the event loop
        model = parse_asset_model(load_document(body, media))
        counts = rt.metadata.import_asset_model(who.tenant_id, model)
        rt.access.audit.record(who, "assets_imported", who.tenant_id, "asset-model", **counts)
        return counts

    return await run_in_threadpool(parse_and_import)
