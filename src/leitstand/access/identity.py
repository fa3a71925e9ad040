"""Passwords (Argon2id) and credentials: opaque random secrets, stored only as SHA-256 hashes.

A login session and an API token are the same kind of thing: a secret the caller shows and the store
knows only by its hash, with an expiry. No signing key exists, so none can leak or be left at a default.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from leitstand.domain.errors import InputError, Unauthenticated
from leitstand.domain.tenancy import Principal, Role, Tenant
from leitstand.store.interfaces import MetadataStore

SESSION_LIFETIME = timedelta(hours=12)
SESSION_COOKIE = "leitstand_session"
TOKEN_PREFIX = "lst_"
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


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class IdentityService:
    """Creates users and credentials, and resolves a presented secret to its principal."""

    def __init__(
        self, metadata: MetadataStore, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._metadata = metadata
        self._clock = clock

    def create_tenant(self, tenant_id: str, name: str) -> Tenant:
        tenant = Tenant(tenant_id, name)
        self._metadata.ensure_tenant(tenant)
        return tenant

    def create_user(self, tenant_id: str, username: str, password: str, role: Role) -> Principal:
        if len(password) < 12:
            raise InputError("passwords need at least 12 characters")
        return self._metadata.create_user(tenant_id, username, _hasher.hash(password), role)

    def login(self, username: str, password: str) -> tuple[Principal, str, datetime]:
        """Check a password; return the principal, a new session secret and its expiry."""
        found = self._metadata.user_by_name(username)
        try:
            with _VERIFY_SLOTS:
                _hasher.verify(found[1] if found else _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            found = None
        if found is None:
            raise Unauthenticated("unknown user or wrong password")
        principal, stored_hash = found
        if _hasher.check_needs_rehash(stored_hash):
            self._metadata.update_password_hash(principal.user_id, _hasher.hash(password))
        expires = self._clock() + SESSION_LIFETIME
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self._metadata.store_credential(hash_secret(secret), principal.user_id, "session", expires)
        return principal, secret, expires

    def issue_api_token(self, principal: Principal, name: str, lifetime: timedelta | None = None) -> str:
        """A long-lived token for a machine client (gateway, simulator, script), shown once."""
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        expires = self._clock() + lifetime if lifetime else None
        self._metadata.store_credential(hash_secret(secret), principal.user_id, "api", expires, name)
        return secret

    def authenticate(self, secret: str) -> Principal:
        """The principal a secret belongs to, or Unauthenticated when unknown or expired."""
        credential = self._metadata.credential(hash_secret(secret))
        if credential is None:
            raise Unauthenticated("the credential is not valid")
        if credential.expires_at is not None and credential.expires_at <= self._clock():
            self._metadata.delete_credential(hash_secret(secret))
            raise Unauthenticated("the credential has expired; log in again")
        return credential.principal

    def logout(self, secret: str) -> None:
        self._metadata.delete_credential(hash_secret(secret))
