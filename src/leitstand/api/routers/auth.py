"""Login, logout, the current principal, API keys, and the public keys that verify tokens."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from leitstand.access.identity import SESSION_COOKIE, set_session_cookie
from leitstand.access.tokens import ALGORITHM
from leitstand.api.deps import credential_secret, principal, require, runtime
from leitstand.api.errors import AUTHENTICATED
from leitstand.api.runtime import Runtime
from leitstand.domain.errors import NotFound, Unauthenticated
from leitstand.domain.tenancy import READERS, Principal, Role

router = APIRouter(prefix="/api/v1/auth", tags=["auth"], responses=AUTHENTICATED)
well_known = APIRouter(prefix="/.well-known", tags=["auth"])


class LoginRequest(BaseModel):
    model_config = {"extra": "forbid"}
    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1000)


class TokenRequest(BaseModel):
    model_config = {"extra": "forbid"}
    name: str = Field(min_length=1, max_length=200)
    days: int = Field(90, ge=1, le=365, description="Lifetime in days (at most a year).")


def me_dict(who: Principal) -> dict[str, object]:
    return {"tenant": who.tenant_id, "username": who.username, "role": who.role.value, "site": who.site}


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def login_checked(
    rt: Runtime, request: Request, username: str, password: str
) -> tuple[Principal, str, datetime]:
    """A login through the rate limits: attempts per client address, and failures per user name and
    address (so that nobody elsewhere can lock a user out by failing in its name)."""
    address = client_address(request)
    rt.limits.logins.take(address)
    failures = f"{username}\n{address}"
    rt.limits.failed_logins.check(failures)
    try:
        return rt.identity.login(username, password, address)
    except Unauthenticated:
        rt.limits.failed_logins.take(failures)
        raise


@router.post("/login")
def login(
    body: LoginRequest, request: Request, response: Response, rt: Runtime = Depends(runtime)
) -> dict[str, object]:
    """Check a password; answer a session token (a signed JWT) and set it as an HttpOnly cookie.
    Attempts are limited per user name and per client address (429 with Retry-After)."""
    who, token, expires = login_checked(rt, request, body.username, body.password)
    set_session_cookie(response, token, expires, rt.settings.session_cookie_secure)
    return {"token": token, "expires_at": expires.isoformat(), **me_dict(who)}


@router.post("/logout", status_code=204)
def logout(request: Request, response: Response, rt: Runtime = Depends(runtime)) -> None:
    """End the session (or revoke the API key) that came with the request."""
    secret = credential_secret(request)
    if secret:
        rt.identity.logout(secret)
    response.delete_cookie(SESSION_COOKIE)


@router.get("/me")
def me(who: Principal = Depends(principal)) -> dict[str, object]:
    """Who the credential belongs to."""
    return me_dict(who)


# Gateways cannot mint credentials; a platform admin may (for its own automation).
TOKEN_MINTERS = READERS | {Role.PLATFORM_ADMIN}


@router.post("/tokens", status_code=201)
def create_token(
    body: TokenRequest, who: Principal = Depends(require(TOKEN_MINTERS)), rt: Runtime = Depends(runtime)
) -> dict[str, object]:
    """Issue an API key acting as the caller (shown once; the server keeps only its id)."""
    token, expires = rt.identity.issue_api_token(who, body.name, timedelta(days=body.days))
    return {"token": token, "name": body.name, "expires_at": expires.isoformat()}


@router.get("/tokens")
def list_tokens(
    who: Principal = Depends(require(Role.TENANT_ADMIN)), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    """The tenant's API keys (not their secrets): who, name, when issued, until when."""
    return {
        "tokens": [
            {
                "id": c.jti,
                "username": c.principal.username,
                "role": c.principal.role.value,
                "name": c.name,
                "created_at": c.created_at.isoformat(),
                "expires_at": c.expires_at.isoformat(),
            }
            for c in rt.metadata.tokens(who.tenant_id)
        ]
    }


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(
    token_id: str, who: Principal = Depends(require(Role.TENANT_ADMIN)), rt: Runtime = Depends(runtime)
) -> None:
    """Revoke an API key of the tenant at once; 404 for unknown and foreign ids alike."""
    credential = rt.metadata.token(token_id)
    if credential is None or credential.principal.tenant_id != who.tenant_id or credential.kind != "api":
        raise NotFound(f"token {token_id!r} not found")
    target = f"user:{credential.principal.username}"
    rt.access.audit.record(who, "token_revoked", who.tenant_id, target, token=token_id, name=credential.name)
    rt.metadata.delete_token(token_id)


@well_known.get("/jwks.json")
def jwks(rt: Runtime = Depends(runtime)) -> dict[str, Any]:
    """The public keys that verify this installation's tokens (no authentication needed)."""
    return rt.identity.keys.jwks()


@well_known.get("/openid-configuration")
def openid_configuration(request: Request, rt: Runtime = Depends(runtime)) -> dict[str, Any]:
    """Discovery metadata, so that other services can verify Leitstand's tokens like any OIDC issuer's."""
    base = str(request.base_url).rstrip("/")
    return {
        "issuer": rt.identity.keys.issuer,
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "id_token_signing_alg_values_supported": [ALGORITHM],
        "token_endpoint_auth_methods_supported": ["none"],
        "subject_types_supported": ["public"],
        "response_types_supported": ["token"],
    }
