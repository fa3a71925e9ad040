"""The asset model: list, read, and import (YAML or JSON) per tenant."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from leitstand.api.body import read_body
from leitstand.api.deps import MODELLERS, principal, require, runtime
from leitstand.api.documents import load_document
from leitstand.api.runtime import Runtime
from leitstand.domain.assets import Asset, parse_asset_model
from leitstand.domain.errors import NotFound
from leitstand.domain.tenancy import Principal

router = APIRouter(prefix="/api/v1/assets", tags=["assets"])


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
    level: str | None = None, who: Principal = Depends(principal), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    """Every asset of the caller's tenant, in path order; optionally one ISA-95 level."""
    assets = rt.asset_cache.assets(who.tenant_id)
    return {"assets": [asset_dict(a) for a in assets if level is None or a.level.value == level]}


@router.get("/{asset_id}")
def get_asset(
    asset_id: str, who: Principal = Depends(principal), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    """One asset of the caller's tenant; 404 for unknown and foreign ids alike."""
    for asset in rt.asset_cache.assets(who.tenant_id):
        if asset.id == asset_id:
            return asset_dict(asset)
    raise NotFound(f"asset {asset_id!r} not found")


@router.post("", openapi_extra={"requestBody": {"content": {"application/yaml": {}, "application/json": {}}}})
async def import_assets(
    request: Request, who: Principal = Depends(require(*MODELLERS)), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    """Import (upsert) an asset model document into the caller's tenant; idempotent."""
    body = await read_body(request, rt.settings.max_request_bytes)
    media = request.headers.get("content-type", "application/json").split(";")[0].strip()

    def parse_and_import() -> dict[str, int]:  # CPU and database work: off the event loop
        model = parse_asset_model(load_document(body, media))
        return rt.metadata.import_asset_model(who.tenant_id, model)

    return await run_in_threadpool(parse_and_import)
