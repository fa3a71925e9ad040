"""The tenant's audit log, and the platform admin's work: tenants and the token signing keys.

A platform admin creates tenants and their first admin, and rotates keys; it reads no tenant's data.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from leitstand.access.identity import MIN_PASSWORD
from leitstand.api.deps import require, runtime
from leitstand.api.errors import AUTHENTICATED
from leitstand.api.routers.accounts import NAME
from leitstand.api.runtime import Runtime
from leitstand.domain.assets import ID_PATTERN
from leitstand.domain.errors import Conflict
from leitstand.domain.tenancy import RESERVED_TENANT_IDS, Principal, Role

router = APIRouter(prefix="/api/v1", tags=["admin"], responses=AUTHENTICATED)
PLATFORM = require(Role.PLATFORM_ADMIN)


class NewTenant(BaseModel):
    model_config = {"extra": "forbid"}
    id: str = Field(pattern=f"^{ID_PATTERN.pattern}$")
    name: str = Field(min_length=1, max_length=200)
    bpn: str | None = Field(None, description="Catena-X business partner number (BPNL...).")
    admin_username: str = Field(pattern=NAME, description="The tenant's first tenant admin.")
    admin_password: str = Field(min_length=MIN_PASSWORD, max_length=1000)


class Rotation(BaseModel):
    model_config = {"extra": "forbid"}
    retire_others: bool = Field(
        False, description="Also retire every older key now: all tokens they signed stop working."
    )


@router.get("/audit")
def audit(
    action: str | None = Query(None, max_length=64, description="Only entries of this action."),
    shared: bool | None = Query(None, description="Only reads by other tenants (true) or own acts (false)."),
    limit: int = Query(100, ge=1, le=10_000),
    who: Principal = Depends(require(Role.TENANT_ADMIN, Role.PLATFORM_ADMIN)),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    """What was changed in your tenant and who read your data under which agreement, newest first."""
    return {"entries": rt.access.audit.entries(who.tenant_id, limit, action, shared)}


@router.get("/admin/tenants")
def list_tenants(who: Principal = Depends(PLATFORM), rt: Runtime = Depends(runtime)) -> dict[str, Any]:
    """Every tenant (company) of the installation."""
    return {"tenants": [{"id": t.id, "name": t.name, "bpn": t.bpn} for t in rt.metadata.tenants()]}


@router.post("/admin/tenants", status_code=201)
def create_tenant(
    body: NewTenant, who: Principal = Depends(PLATFORM), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    """A new tenant with its first tenant admin."""
    if body.id in RESERVED_TENANT_IDS or rt.metadata.tenant(body.id) is not None:
        raise Conflict(f"tenant {body.id!r} already exists")
    if rt.metadata.user_by_name(body.admin_username) is not None:
        raise Conflict(f"user {body.admin_username!r} already exists")
    rt.access.audit.record(who, "tenant_created", body.id, f"tenant:{body.id}", admin=body.admin_username)
    tenant = rt.identity.create_tenant(body.id, body.name, body.bpn)
    admin = rt.identity.create_user(tenant.id, body.admin_username, body.admin_password, Role.TENANT_ADMIN)
    return {"id": tenant.id, "name": tenant.name, "bpn": tenant.bpn, "admin": admin.username}


@router.post("/admin/keys/rotate")
def rotate_keys(
    body: Rotation, who: Principal = Depends(PLATFORM), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    """Make a new key sign all new tokens; optionally retire the older ones at once."""
    kid, retired = rt.identity.keys.rotate(body.retire_others)
    rt.access.audit.record(who, "keys_rotated", who.tenant_id, f"key:{kid}", retired=retired)
    return {"signing_key": kid, "retired": retired}
