"""Accepting tokens from a company's own OpenID Connect provider (Keycloak, Entra ID, Okta, ...).

A configured provider is trusted for exactly what its configuration says: its issuer, the audience
Leitstand is registered as, the tenant its users belong to (fixed, or read from a claim through a
map) and how its role claim maps to Leitstand roles. Its users are provisioned on first sight as
external accounts (no password here) named by the provider's subject id, and their role follows the
provider's claim on every request. A token that maps to no tenant or no role is refused. External
users cannot mint API keys: switching a person off at the provider switches them off here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any

import jwt

from leitstand.access.audit import AuditLog
from leitstand.domain.errors import InputError, Unauthenticated
from leitstand.domain.tenancy import PLATFORM_TENANT, Principal, Role
from leitstand.store.interfaces import MetadataStore

ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"]


@dataclass(frozen=True)
class OidcProvider:
    name: str
    issuer: str
    audience: str
    jwks_url: str
    tenant: str | None = None  # every user of this provider belongs to this tenant ...
    tenant_claim: str = "tenant"  # ... or the tenant is this claim's value, through tenant_map
    tenant_map: dict[str, str] = field(default_factory=dict)
    role_claim: str = "roles"
    role_map: dict[str, str] = field(default_factory=dict)  # claim value -> Leitstand role
    username_claim: str = "preferred_username"

    def __post_init__(self) -> None:
        if not self.name or ":" in self.name:
            raise InputError("an OIDC provider needs a name without ':'")
        bad = [r for r in self.role_map.values() if r not in {x.value for x in Role}]
        bad += [r for r in self.role_map.values() if r in (Role.PLATFORM_ADMIN.value, Role.GATEWAY.value)]
        if bad:
            raise InputError(f"OIDC provider {self.name!r}: role_map may name only tenant roles, not {bad}")
        if self.tenant is None and not self.tenant_map:
            raise InputError(f"OIDC provider {self.name!r} needs a tenant or a tenant_map")
        if PLATFORM_TENANT in {self.tenant, *self.tenant_map.values()}:
            raise InputError(f"OIDC provider {self.name!r} may not map users into the platform tenant")


class OidcVerifier:
    """Verifies tokens of the configured providers against their published keys (JWKS, cached)."""

    def __init__(self, providers: list[OidcProvider]) -> None:
        for what, values in (
            ("name", [p.name for p in providers]),
            ("issuer", [p.issuer for p in providers]),
        ):
            if len(set(values)) != len(values):
                raise InputError(f"two OIDC providers have the same {what}")
        self._by_issuer = {p.issuer: p for p in providers}
        self._clients: dict[str, jwt.PyJWKClient] = {}
        self._lock = threading.Lock()

    def _provider(self, token: str) -> OidcProvider | None:
        try:
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError:
            return None
        return self._by_issuer.get(issuer) if isinstance(issuer, str) else None

    def accepts(self, token: str) -> bool:
        return self._provider(token) is not None

    def _client(self, provider: OidcProvider) -> jwt.PyJWKClient:
        with self._lock:
            client = self._clients.get(provider.issuer)
            if client is None:
                client = jwt.PyJWKClient(provider.jwks_url, cache_keys=True, lifespan=300, timeout=5)
                self._clients[provider.issuer] = client
            return client

    def authenticate(self, token: str, metadata: MetadataStore, audit: AuditLog) -> Principal:
        provider = self._provider(token)
        if provider is None:
            raise Unauthenticated("the token's issuer is not a configured identity provider")
        try:
            key = self._client(provider).get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=ALGORITHMS,
                audience=provider.audience,
                issuer=provider.issuer,
                leeway=30,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("the identity provider's token has expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"the identity provider's token is not valid: {exc}") from exc
        tenant = provider.tenant or provider.tenant_map.get(str(claims.get(provider.tenant_claim, "")))
        if tenant is None or metadata.tenant(tenant) is None:
            raise Unauthenticated("the identity provider's token maps to no tenant here")
        role = _role(provider, claims.get(provider.role_claim))
        if role is None:
            raise Unauthenticated(
                "the identity provider's token carries no role that maps to a Leitstand role"
            )
        # The subject is the provider's stable, unique id of the person; names can be changed by users.
        username = f"{provider.name}:{claims['sub']}"
        found = metadata.user_by_name(username)
        if found is None:
            created = metadata.create_user(tenant, username, "!", role, kind="external")
            name = claims.get(provider.username_claim)
            audit.record(created, "user_provisioned", tenant, f"user:{username}", role=role.value, name=name)
            return created
        principal = found[0]
        if principal.tenant_id != tenant or not principal.external:
            raise Unauthenticated("this external user belongs to another tenant")
        if principal.role is not role:
            audit.record(
                principal,
                "role_changed",
                tenant,
                f"user:{username}",
                old=principal.role.value,
                new=role.value,
                by=provider.name,
            )
            metadata.set_role(principal.user_id, role)
            principal = replace(principal, role=role)
        return principal


def _role(provider: OidcProvider, claim: object) -> Role | None:
    """The highest-ranking mapped role among the claim's values."""
    values = claim if isinstance(claim, list) else [claim]
    mapped = {Role(provider.role_map[v]) for v in values if isinstance(v, str) and v in provider.role_map}
    for role in (Role.TENANT_ADMIN, Role.ENGINEER, Role.OPERATOR, Role.PLANNER, Role.VIEWER):
        if role in mapped:
            return role
    return None
