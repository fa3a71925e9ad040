"""Accounts and credentials: Argon2id passwords, signed session tokens and API keys, OIDC logins.

A login session and an API key are the same kind of thing: a signed JWT (see `tokens`) with an expiry
and a token id that the metadata store must still hold. A token from a configured OpenID Connect
provider is accepted too; its user is provisioned on first sight with the role the provider names.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from leitstand.access.audit import AuditLog
from leitstand.access.mosquitto import mosquitto_password_hash
from leitstand.access.oidc import OidcVerifier
from leitstand.access.tokens import KeyRing
from leitstand.domain.assets import check_id
from leitstand.domain.errors import Forbidden, InputError, Unauthenticated
from leitstand.domain.tenancy import PLATFORM_TENANT, RESERVED_TENANT_IDS, Principal, Role, Tenant
from leitstand.store.interfaces import MetadataStore

SESSION_LIFETIME = timedelta(hours=12)
MAX_API_KEY_LIFETIME = timedelta(days=365)
SESSION_COOKIE = "leitstand_session"
MIN_PASSWORD = 12
# Accounts without a password here (gateways, OIDC users) store this; it is no Argon2 hash, so no
# password ever verifies against it.
NO_PASSWORD = "!"
_hasher = PasswordHasher()
# Each Argon2 verification takes 64 MiB and a core for tens of milliseconds; at most this many run at once,
# so a burst of login attempts queues instead of exhausting memory.
_VERIFY_SLOTS = threading.BoundedSemaphore(2)
# Verifying against this when the user does not exist keeps the response time the same either way.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class SessionCookieWriter(Protocol):
    def set_cookie(
        self,
        key: str,
        value: str,
        *,
        httponly: bool,
        samesite: Literal["lax"],
        secure: bool,
        expires: datetime,
    ) -> None: ...


def set_session_cookie(response: SessionCookieWriter, secret: str, expires: datetime, secure: bool) -> None:
    """Set the session cookie the same way for the API's and the page's login."""
    response.set_cookie(SESSION_COOKIE, secret, httponly=True, samesite="lax", secure=secure, expires=expires)


class IdentityService:
    """Creates accounts and tokens, and resolves a presented token to its principal."""

    def __init__(
        self,
        metadata: MetadataStore,
        keys: KeyRing,
        audit: AuditLog,
        oidc: OidcVerifier | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._metadata = metadata
        self.keys = keys
        self._audit = audit
        self._oidc = oidc
        self._clock = clock

    def create_tenant(self, tenant_id: str, name: str, bpn: str | None = None) -> Tenant:
        if tenant_id in RESERVED_TENANT_IDS and tenant_id != PLATFORM_TENANT:
            raise InputError(f"the tenant id {tenant_id!r} is reserved")
        tenant = Tenant(tenant_id, name, bpn)
        self._metadata.ensure_tenant(tenant)
        return tenant

    def create_user(self, tenant_id: str, username: str, password: str, role: Role) -> Principal:
        if role is Role.GATEWAY:
            raise InputError("gateways are service accounts without a password; create them as gateways")
        if (role is Role.PLATFORM_ADMIN) != (tenant_id == PLATFORM_TENANT):
            raise InputError(f"platform admins, and only they, belong to the tenant {PLATFORM_TENANT!r}")
        if len(password) < MIN_PASSWORD:
            raise InputError(f"passwords need at least {MIN_PASSWORD} characters")
        return self._metadata.create_user(tenant_id, username, _hasher.hash(password), role)

    def create_gateway(
        self, tenant_id: str, name: str, site: str, lifetime: timedelta
    ) -> tuple[Principal, str, datetime]:
        """A service account that may only publish data of `site`, with its first API key. The key is
        also its MQTT password (until it is revoked or expires); the broker's password file holds only a
        hash of it."""
        check_id(name, "gateway")  # it becomes part of MQTT user names and ACL lines
        # The tenant is part of the name, so no tenant learns which gateway names others use.
        username = f"{tenant_id}/{name}"
        gateway = self._metadata.create_user(tenant_id, username, NO_PASSWORD, Role.GATEWAY, "service", site)
        token, expires, jti = self._issue(gateway, "api", lifetime, f"gateway {name}")
        self._metadata.set_mqtt_password_hash(gateway.user_id, mosquitto_password_hash(token), jti)
        return gateway, token, expires

    def login(self, username: str, password: str, address: str = "") -> tuple[Principal, str, datetime]:
        """Check a password; return the principal, a new session token and its expiry. Logins and
        failed attempts on an existing account go to its tenant's audit log."""
        found = self._metadata.user_by_name(username)
        # Accounts without a password here verify against the dummy too: the same time, the same answer.
        stored = found[1] if found and found[1] != NO_PASSWORD else _DUMMY_HASH
        try:
            with _VERIFY_SLOTS:
                _hasher.verify(stored, password)
            verified = found is not None and stored is not _DUMMY_HASH
        except (VerificationError, InvalidHashError):
            verified = False
        if not verified:
            if found is not None:
                who = found[0]
                self._audit.record(
                    who, "login_failed", who.tenant_id, f"user:{who.username}", address=address
                )
            raise Unauthenticated("unknown user or wrong password")
        assert found is not None
        principal = found[0]
        if _hasher.check_needs_rehash(stored):
            self._metadata.update_password_hash(principal.user_id, _hasher.hash(password))
        self._metadata.delete_expired_tokens(self._clock())
        self._audit.record(
            principal, "login", principal.tenant_id, f"user:{principal.username}", address=address
        )
        token, expires, _ = self._issue(principal, "session", SESSION_LIFETIME, "")
        return principal, token, expires

    def issue_api_token(self, principal: Principal, name: str, lifetime: timedelta) -> tuple[str, datetime]:
        """A token for a machine client (gateway, simulator, script), shown once."""
        if lifetime > MAX_API_KEY_LIFETIME:
            raise InputError(f"API keys live at most {MAX_API_KEY_LIFETIME.days} days")
        if principal.external:
            raise Forbidden("users of an identity provider use its tokens; API keys are for local accounts")
        self._audit.record(
            principal, "token_issued", principal.tenant_id, f"user:{principal.username}", name=name
        )
        token, expires, _ = self._issue(principal, "api", lifetime, name)
        return token, expires

    def _issue(
        self, principal: Principal, kind: str, lifetime: timedelta, name: str
    ) -> tuple[str, datetime, str]:
        now = self._clock()
        expires = now + lifetime
        jti = secrets.token_urlsafe(18)
        self._metadata.store_token(jti, principal.user_id, kind, expires, name)
        claims = {
            "sub": str(principal.user_id),
            "jti": jti,
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
            "tenant": principal.tenant_id,
            "role": principal.role.value,
            "kind": kind,
        }
        if principal.site:
            claims["site"] = principal.site
        return self.keys.sign(claims), expires, jti

    def authenticate(self, token: str) -> Principal:
        """The principal a token belongs to, or Unauthenticated when it is invalid, expired or revoked."""
        if self._oidc is not None and not self.keys.knows(token) and self._oidc.accepts(token):
            return self._oidc.authenticate(token, self._metadata, self._audit)
        claims = self.keys.verify(token)
        credential = self._metadata.token(str(claims["jti"]))
        if credential is None or str(credential.principal.user_id) != claims["sub"]:
            raise Unauthenticated("the token was revoked; log in again")
        if credential.expires_at <= self._clock():
            self._metadata.delete_token(credential.jti)
            raise Unauthenticated("the token has expired; log in again")
        return credential.principal

    def token_id(self, token: str) -> str | None:
        """The id of a token this installation signed and that is still valid, else None."""
        try:
            return str(self.keys.verify(token)["jti"])
        except Unauthenticated:
            return None

    def logout(self, token: str) -> None:
        jti = self.token_id(token)
        credential = self._metadata.token(jti) if jti is not None else None
        if credential is not None:
            who = credential.principal
            self._audit.record(who, "logout", who.tenant_id, f"user:{who.username}", kind=credential.kind)
            self._metadata.delete_token(credential.jti)
