"""Plant connections: list them with their health, create and remove those made through the API.

Connections of the config file are listed too (`source: config`) but change only there. The settings
document of a connection is the same in both places; see docs/connect/.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from leitstand.access.policy import ReadScope
from leitstand.api.deps import own_data, require, runtime
from leitstand.api.errors import AUTHENTICATED
from leitstand.api.runtime import Runtime
from leitstand.connect.base import ID
from leitstand.connect.registry import Connections
from leitstand.domain.errors import NotReady
from leitstand.domain.tenancy import Principal, Role

router = APIRouter(prefix="/api/v1/connections", tags=["connections"], responses=AUTHENTICATED)
ADMIN = require(Role.TENANT_ADMIN)
NAME = Path(pattern=ID, description="The connection's name.")
EXAMPLE: dict[str, Any] = {
    "protocol": "mqtt",
    "name": "press-shop-uns",
    "broker": {"host": "broker.plant.example", "port": 8883, "username": "leitstand", "password": "…"},
    "topics": ["acme/hh/#"],
    "qos": 1,
}


def _connections(rt: Runtime) -> Connections:
    if rt.connections is None:
        raise NotReady("connections are not running in this process")
    return rt.connections


@router.get("")
def list_connections(scope: ReadScope = Depends(own_data), rt: Runtime = Depends(runtime)) -> dict[str, Any]:
    """Your tenant's connections with their health: link state since when, last message, messages per
    second over the last ten seconds, and faults by reason."""
    return {"connections": _connections(rt).views(scope.tenant)}


@router.get("/{name}")
def get_connection(
    name: str = NAME, scope: ReadScope = Depends(own_data), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    """One connection: health, its settings (passwords shown as ***), and for a Sparkplug B host the
    edge nodes it knows (online, bdSeq, seq, devices)."""
    return _connections(rt).view(scope.tenant, name)


class ConnectionDocument(BaseModel):
    """A connection's settings: `protocol` and `name`, and the protocol's own fields (docs/connect/),
    which are checked against the protocol's settings (422 names the field)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [EXAMPLE]})
    protocol: Literal["mqtt", "sparkplug", "opcua", "modbus"]
    name: str = Field(pattern=ID)
    tenant: str | None = Field(None, description="Your tenant (the default); no other is allowed.")


@router.post("", status_code=201)
def create_connection(
    doc: ConnectionDocument = Body(),
    who: Principal = Depends(ADMIN),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    """Create and start a connection delivering records to your tenant. It may reach only hosts the
    operator allows (setting `connection_allowed_hosts`); it is started again after a restart."""
    settings = doc.model_dump(exclude_none=True)
    view = _connections(rt).create(who.tenant_id, settings, who.username)
    rt.access.audit.record(
        who, "connection_created", who.tenant_id, f"connection:{view['name']}", protocol=view["protocol"]
    )
    return view


@router.delete("/{name}", status_code=204)
def delete_connection(
    name: str = NAME, who: Principal = Depends(ADMIN), rt: Runtime = Depends(runtime)
) -> None:
    """Stop and remove a connection made through the API (what it delivered stays stored)."""
    _connections(rt).delete(who.tenant_id, name)
    rt.access.audit.record(who, "connection_deleted", who.tenant_id, f"connection:{name}")
