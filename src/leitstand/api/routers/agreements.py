"""Agreements: a tenant offers a data set to another tenant for a purpose, and may revoke it at once.

The provider is always the caller's tenant; the consumer sees agreements it received and reads the
shared data through the read endpoints with `provider=<tenant>`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from leitstand.access.policy import ReadScope
from leitstand.api.deps import id_path, own_data, require, runtime
from leitstand.api.errors import AUTHENTICATED
from leitstand.api.runtime import Runtime
from leitstand.domain.agreements import Agreement, DataKind, FrameworkName, check_offer, to_odrl
from leitstand.domain.errors import Forbidden, InputError, NotFound
from leitstand.domain.tenancy import PLATFORM_TENANT, Principal, Role

router = APIRouter(prefix="/api/v1/agreements", tags=["agreements"], responses=AUTHENTICATED)
ADMIN = require(Role.TENANT_ADMIN)


class Offer(BaseModel):
    model_config = {"extra": "forbid"}
    consumer: str = Field(min_length=1, max_length=64, description="The tenant that may read the data.")
    name: str = Field(min_length=1, max_length=200, description="What is shared, in words.")
    scope: str = Field(min_length=1, max_length=64, description="An asset of yours; it and all below it.")
    kinds: list[DataKind] = Field(min_length=1, description="Which kinds of data about the scope.")
    purpose: str = Field(
        min_length=1, max_length=200, description="Usage purpose, e.g. cx.quality.base:1 (or free text)."
    )
    framework: FrameworkName = Field(
        "DataExchangeGovernance:1.0", description="Catena-X framework agreement."
    )
    valid_from: datetime | None = Field(None, description="Default: now.")
    valid_until: datetime | None = Field(None, description="Default: until revoked.")


def _visible(rt: Runtime, tenant: str, agreement_id: int) -> Agreement:
    agreement = rt.metadata.agreement(agreement_id)
    if agreement is None or tenant not in (agreement.provider, agreement.consumer):
        raise NotFound(f"agreement {agreement_id} not found")
    return agreement


@router.get("")
def list_agreements(scope: ReadScope = Depends(own_data), rt: Runtime = Depends(runtime)) -> dict[str, Any]:
    """Agreements the caller's tenant gave (`provider` is you) or received (`consumer` is you)."""
    now = datetime.now(UTC)
    return {"agreements": [a.as_dict(now) for a in rt.metadata.agreements(scope.tenant)]}


@router.post("", status_code=201)
def offer(body: Offer, who: Principal = Depends(ADMIN), rt: Runtime = Depends(runtime)) -> dict[str, Any]:
    """Share a part of your asset tree with another tenant; in force from `valid_from` on."""
    now = datetime.now(UTC)
    valid_from = body.valid_from or now
    kinds = frozenset(body.kinds)
    check_offer(body.name, kinds, body.framework, valid_from, body.valid_until)
    if body.consumer == who.tenant_id:
        raise InputError("an agreement shares data with another tenant, not with your own")
    if body.consumer == PLATFORM_TENANT:
        raise InputError("the platform operator reads no tenant's data; share with a company's tenant")
    if body.scope not in {a.id for a in rt.asset_cache.assets(who.tenant_id)}:
        raise NotFound(f"asset {body.scope!r} not found")
    if rt.metadata.tenant(body.consumer) is None:
        raise NotFound(f"tenant {body.consumer!r} not found")
    agreement = rt.metadata.create_agreement(
        Agreement(
            id=0,
            provider=who.tenant_id,
            consumer=body.consumer,
            name=body.name,
            scope=body.scope,
            kinds=kinds,
            purpose=body.purpose,
            framework=body.framework,
            valid_from=valid_from,
            valid_until=body.valid_until,
            created_at=now,
            created_by=who.username,
        )
    )
    rt.access.audit.record(
        who, "agreement_offered", who.tenant_id, f"agreement:{agreement.id}", consumer=body.consumer
    )
    return agreement.as_dict(now)


@router.get("/{agreement_id}")
def get_agreement(
    agreement_id: int = id_path(), scope: ReadScope = Depends(own_data), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    """One agreement your tenant gave or received."""
    return _visible(rt, scope.tenant, agreement_id).as_dict(datetime.now(UTC))


@router.get("/{agreement_id}/odrl")
def get_odrl(
    agreement_id: int = id_path(), scope: ReadScope = Depends(own_data), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    """The agreement as an ODRL policy (JSON-LD) in the Catena-X profile, parties by their BPN."""
    agreement = _visible(rt, scope.tenant, agreement_id)
    provider, consumer = rt.metadata.tenant(agreement.provider), rt.metadata.tenant(agreement.consumer)
    return to_odrl(agreement, provider.bpn if provider else None, consumer.bpn if consumer else None)


@router.post("/{agreement_id}/revoke")
def revoke(
    agreement_id: int = id_path(), who: Principal = Depends(ADMIN), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    """End an agreement your tenant gave, at once: the consumer's next request no longer sees the data."""
    agreement = _visible(rt, who.tenant_id, agreement_id)
    if agreement.provider != who.tenant_id:
        raise Forbidden("only the providing tenant can revoke an agreement")
    now = datetime.now(UTC)
    rt.access.audit.record(
        who, "agreement_revoked", who.tenant_id, f"agreement:{agreement_id}", consumer=agreement.consumer
    )
    revoked = rt.metadata.revoke_agreement(agreement_id, who.username, now)
    assert revoked is not None
    return revoked.as_dict(now)
