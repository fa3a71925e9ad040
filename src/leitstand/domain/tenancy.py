"""Tenants, roles and the principal a request acts for."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, get_args

from leitstand.domain.errors import InputError

# Catena-X business partner number of a legal entity: BPNL and 12 upper-case letters or digits.
BPN_PATTERN = re.compile(r"BPNL[0-9A-Z]{12}")
PLATFORM_TENANT = "platform"
# Tenant ids that would collide with a protocol namespace in the MQTT topic tree.
RESERVED_TENANT_IDS = frozenset({PLATFORM_TENANT, "spBv1.0"})


class Role(StrEnum):
    """What an account may do. Every role but the platform admin acts inside its own tenant."""

    VIEWER = "viewer"  # reads
    OPERATOR = "operator"  # reads, enters data
    ENGINEER = "engineer"  # reads, enters data, maintains the asset model
    PLANNER = "planner"  # reads (plans and demand arrive with supply-chain planning)
    TENANT_ADMIN = "tenant_admin"  # all of the above, users, gateways, agreements, audit
    PLATFORM_ADMIN = "platform_admin"  # manages tenants; reads no tenant's data
    GATEWAY = "gateway"  # a service account that publishes data of one site, and nothing else


READERS = frozenset({Role.VIEWER, Role.OPERATOR, Role.ENGINEER, Role.PLANNER, Role.TENANT_ADMIN})
WRITERS = frozenset({Role.OPERATOR, Role.ENGINEER, Role.TENANT_ADMIN, Role.GATEWAY})
MODELLERS = frozenset({Role.ENGINEER, Role.TENANT_ADMIN})
# The roles a tenant admin may give its users; platform admins and gateways are made otherwise.
USER_ROLES = frozenset(READERS)
UserRoleName = Literal["viewer", "operator", "engineer", "planner", "tenant_admin"]
assert set(get_args(UserRoleName)) == {r.value for r in USER_ROLES}


@dataclass(frozen=True, slots=True)
class Tenant:
    """A company (OEM, supplier, logistics provider); every stored row belongs to exactly one."""

    id: str
    name: str
    bpn: str | None = None

    def __post_init__(self) -> None:
        if self.bpn is not None and not BPN_PATTERN.fullmatch(self.bpn):
            raise InputError(
                f"business partner number {self.bpn!r} must look like BPNL followed by 12 A-Z/0-9"
            )


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a user or service account of one tenant. A gateway is bound to one site."""

    tenant_id: str
    user_id: int
    username: str
    role: Role
    site: str | None = None
    external: bool = False  # a user of a company's identity provider, without a password here
