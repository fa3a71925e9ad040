"""Data-sharing agreements: a provider tenant grants a consumer tenant a named data set for a purpose.

A data set is a part of the provider's asset tree (`scope`: an asset id and everything below it) and
the kinds of data about it. An agreement is in force from `valid_from` until `valid_until` unless it
was revoked; the access layer checks that on every request, so a revocation holds from the next one.
Agreements export as ODRL policies in the Catena-X profile (framework agreement and usage purpose).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, get_args

from leitstand.domain.errors import InputError


class DataKind(StrEnum):
    """What a read returns, and so what an agreement can share."""

    ASSETS = "assets"  # the asset model of the scope: names, levels, signals
    KPI = "kpi"  # OEE, its inputs, losses and the downtime Pareto
    LIVE = "live"  # current machine states and the live stream (with OEE only if `kpi` is shared too)


# Catena-X ODRL profile (https://w3id.org/catenax/policy/): the framework agreements and the usage
# purposes Leitstand's data sets fit. Other purposes may be given as free text; the export marks them.
CX_POLICY = "https://w3id.org/catenax/policy/"
FrameworkName = Literal[
    "DataExchangeGovernance:1.0", "Quality:1.0", "DemandCapacity:1.0", "Puris:1.0", "Traceability:1.0"
]
FRAMEWORK_AGREEMENTS = frozenset(get_args(FrameworkName))
USAGE_PURPOSES = frozenset(
    {
        "cx.core.industrycore:1",
        "cx.quality.base:1",
        "cx.dcm.base:1",
        "cx.puris.base:1",
        "cx.logistics.base:1",
    }
)
MAX_NAME = 200


@dataclass(frozen=True, slots=True)
class Agreement:
    id: int
    provider: str
    consumer: str
    name: str
    scope: str
    kinds: frozenset[DataKind]
    purpose: str
    framework: str
    valid_from: datetime
    valid_until: datetime | None
    created_at: datetime
    created_by: str
    revoked_at: datetime | None = None
    revoked_by: str | None = None

    def in_force(self, now: datetime) -> bool:
        return (
            self.revoked_at is None
            and self.valid_from <= now
            and (self.valid_until is None or now < self.valid_until)
        )

    def status(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if now < self.valid_from:
            return "pending"
        if self.valid_until is not None and now >= self.valid_until:
            return "expired"
        return "active"

    def as_dict(self, now: datetime) -> dict[str, Any]:
        return {
            "id": self.id,
            "provider": self.provider,
            "consumer": self.consumer,
            "name": self.name,
            "scope": self.scope,
            "kinds": sorted(k.value for k in self.kinds),
            "purpose": self.purpose,
            "framework": self.framework,
            "valid_from": self.valid_from.isoformat(),
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "revoked_by": self.revoked_by,
            "status": self.status(now),
        }


def check_offer(
    name: str,
    kinds: frozenset[DataKind],
    framework: str,
    valid_from: datetime,
    valid_until: datetime | None,
) -> None:
    """Refuse an offer that could never be understood or never be in force."""
    if not name.strip() or len(name) > MAX_NAME:
        raise InputError(f"an agreement needs a name of 1 to {MAX_NAME} characters")
    if not kinds:
        raise InputError(f"an agreement shares at least one kind of data: {', '.join(DataKind)}")
    if framework not in FRAMEWORK_AGREEMENTS:
        raise InputError(f"framework must be one of {', '.join(sorted(FRAMEWORK_AGREEMENTS))}")
    if valid_from.tzinfo is None or (valid_until is not None and valid_until.tzinfo is None):
        raise InputError("valid_from and valid_until need a UTC offset")
    if valid_until is not None and valid_until <= valid_from:
        raise InputError("valid_until must be after valid_from")


def to_odrl(agreement: Agreement, provider_bpn: str | None, consumer_bpn: str | None) -> dict[str, Any]:
    """The agreement as an ODRL Agreement (JSON-LD) in the Catena-X policy profile."""
    constraints: list[dict[str, Any]] = [
        {
            "leftOperand": "cx-policy:FrameworkAgreement",
            "operator": "eq",
            "rightOperand": agreement.framework,
        },
        {"leftOperand": "cx-policy:UsagePurpose", "operator": "eq", "rightOperand": agreement.purpose},
        {"leftOperand": "dateTime", "operator": "gteq", "rightOperand": agreement.valid_from.isoformat()},
    ]
    if agreement.valid_until is not None:
        constraints.append(
            {"leftOperand": "dateTime", "operator": "lt", "rightOperand": agreement.valid_until.isoformat()}
        )
    return {
        "@context": [
            "http://www.w3.org/ns/odrl.jsonld",
            {"cx-policy": CX_POLICY, "leitstand": "urn:leitstand:"},
        ],
        "@type": "Agreement",
        "uid": f"urn:leitstand:agreement:{agreement.id}",
        "assigner": provider_bpn or f"urn:leitstand:tenant:{agreement.provider}",
        "assignee": consumer_bpn or f"urn:leitstand:tenant:{agreement.consumer}",
        "target": {
            "uid": f"urn:leitstand:dataset:{agreement.provider}:{agreement.scope}",
            "title": agreement.name,
            "kinds": sorted(k.value for k in agreement.kinds),
        },
        "permission": [{"action": "use", "constraint": [{"and": constraints}]}],
        "leitstand:standardPurpose": agreement.purpose in USAGE_PURPOSES,
        "leitstand:status": "revoked" if agreement.revoked_at else "issued",
    }
