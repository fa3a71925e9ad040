"""Tenants and the principal a request acts for; every query is scoped to the principal's tenant."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """What a user may do inside its tenant (the full role model arrives with the access capability)."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ENGINEER = "engineer"
    TENANT_ADMIN = "tenant_admin"
    GATEWAY = "gateway"


@dataclass(frozen=True, slots=True)
class Tenant:
    """A company; every stored row belongs to exactly one."""

    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a user or service account of one tenant."""

    tenant_id: str
    user_id: int
    username: str
    role: Role
