"""A tenant's accounts: users with roles, and gateways (service accounts that publish one site's data).

Only the tenant admin manages them, only inside its own tenant; the tenant and the owner of an account
are never taken from the request body. Unknown and foreign ids get the same 404.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from leitstand.api.deps import id_path, require, runtime
from leitstand.api.errors import AUTHENTICATED
from leitstand.api.runtime import Runtime
from leitstand.domain.assets import ID_PATTERN, AssetLevel
from leitstand.domain.errors import InputError, NotFound
from leitstand.domain.tenancy import Principal, Role, UserRoleName

router = APIRouter(prefix="/api/v1", tags=["accounts"], responses=AUTHENTICATED)
ADMIN = require(Role.TENANT_ADMIN)
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,199}$"  # no ':' (external users are 'provider:name')


class NewUser(BaseModel):
    model_config = {"extra": "forbid"}
    username: str = Field(pattern=NAME)
    password: str = Field(min_length=12, max_length=1000)
    role: UserRoleName


class RoleChange(BaseModel):
    model_config = {"extra": "forbid"}
    role: UserRoleName


class NewGateway(BaseModel):
    model_config = {"extra": "forbid"}
    name: str = Field(pattern=f"^{ID_PATTERN.pattern}$", description="An id: it becomes part of MQTT names.")
    site: str = Field(min_length=1, max_length=64, description="The site (plant) it publishes for.")
    days: int = Field(365, ge=1, le=365, description="Lifetime of its API key in days.")


def _user_dict(who: Principal, kind: str) -> dict[str, Any]:
    return {
        "id": who.user_id,
        "username": who.username,
        "role": who.role.value,
        "kind": kind,
        "site": who.site,
    }


def _own_user(rt: Runtime, who: Principal, user_id: int) -> Principal:
    found = rt.metadata.user(user_id)
    if found is None or found.tenant_id != who.tenant_id:
        raise NotFound(f"user {user_id} not found")
    return found


@router.get("/users")
def list_users(who: Principal = Depends(ADMIN), rt: Runtime = Depends(runtime)) -> dict[str, Any]:
    """The tenant's accounts: people, gateways and users from its identity provider."""
    return {"users": [_user_dict(p, kind) for p, kind in rt.metadata.users(who.tenant_id)]}


@router.post("/users", status_code=201)
def create_user(
    body: NewUser, who: Principal = Depends(ADMIN), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    """A user of the caller's tenant."""
    rt.access.audit.record(who, "user_created", who.tenant_id, f"user:{body.username}", role=body.role)
    created = rt.identity.create_user(who.tenant_id, body.username, body.password, Role(body.role))
    return _user_dict(created, "human")


@router.patch("/users/{user_id}")
def change_role(
    body: RoleChange,
    user_id: int = id_path(),
    who: Principal = Depends(ADMIN),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    """Give a user another role; it holds from the user's next request."""
    role = Role(body.role)
    user = _own_user(rt, who, user_id)
    if user.role is Role.GATEWAY:
        raise InputError("a gateway's role cannot change")
    if user.user_id == who.user_id and role is not Role.TENANT_ADMIN:
        raise InputError("you cannot take the tenant admin role from yourself; another admin can")
    rt.access.audit.record(
        who, "role_changed", who.tenant_id, f"user:{user.username}", old=user.role.value, new=role.value
    )
    rt.metadata.set_role(user_id, role)
    return _user_dict(_own_user(rt, who, user_id), "human")


@router.delete("/users/{user_id}", status_code=204)
def delete_user(
    user_id: int = id_path(), who: Principal = Depends(ADMIN), rt: Runtime = Depends(runtime)
) -> None:
    """Delete an account and revoke all its tokens at once."""
    user = _own_user(rt, who, user_id)
    if user.user_id == who.user_id:
        raise InputError("you cannot delete your own account")
    rt.access.audit.record(who, "user_deleted", who.tenant_id, f"user:{user.username}", role=user.role.value)
    rt.metadata.delete_user(user_id)


@router.post("/gateways", status_code=201)
def create_gateway(
    body: NewGateway, who: Principal = Depends(ADMIN), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    """A gateway of one site with its API key (shown once). It may publish records of that site's
    assets only, over HTTP or MQTT (user name `<tenant>/<name>`, the key as password), and read
    nothing."""
    sites = {a.id for a in rt.asset_cache.assets(who.tenant_id) if a.level is AssetLevel.SITE}
    if body.site not in sites:
        raise NotFound(f"site {body.site!r} not found")
    target = f"user:{who.tenant_id}/{body.name}"
    rt.access.audit.record(who, "gateway_created", who.tenant_id, target, site=body.site)
    gateway, token, expires = rt.identity.create_gateway(
        who.tenant_id, body.name, body.site, timedelta(days=body.days)
    )
    return {
        **_user_dict(gateway, "service"),
        "token": token,
        "expires_at": expires.isoformat(),
        "mqtt_username": gateway.username,
    }
