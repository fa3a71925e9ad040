"""Login, logout, the current principal and API tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from leitstand.access.identity import SESSION_COOKIE, set_session_cookie
from leitstand.api.deps import credential_secret, principal, require, runtime
from leitstand.api.runtime import Runtime
from leitstand.domain.tenancy import Principal, Role

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class LoginRequest(BaseModel):
    model_config = {"extra": "forbid"}
    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1000)


class TokenRequest(BaseModel):
    model_config = {"extra": "forbid"}
    name: str = Field(min_length=1, max_length=200)
    days: int = Field(90, ge=1, le=365, description="Lifetime in days (at most a year).")


def _me(who: Principal) -> dict[str, object]:
    return {"tenant": who.tenant_id, "username": who.username, "role": who.role.value}


@router.post("/login")
def login(body: LoginRequest, response: Response, rt: Runtime = Depends(runtime)) -> dict[str, object]:
    """Check a password; answer a session token and set it as an HttpOnly cookie."""
    who, secret, expires = rt.identity.login(body.username, body.password)
    set_session_cookie(response, secret, expires, rt.settings.session_cookie_secure)
    return {"token": secret, "expires_at": expires.isoformat(), **_me(who)}


@router.post("/logout", status_code=204)
def logout(request: Request, response: Response, rt: Runtime = Depends(runtime)) -> None:
    """End the session whose credential came with the request."""
    secret = credential_secret(request)
    if secret:
        rt.identity.logout(secret)
    response.delete_cookie(SESSION_COOKIE)


@router.get("/me")
def me(who: Principal = Depends(principal)) -> dict[str, object]:
    """Who the credential belongs to."""
    return _me(who)


# A gateway's own credential may not mint more credentials.
TOKEN_MINTERS = (Role.VIEWER, Role.OPERATOR, Role.ENGINEER, Role.TENANT_ADMIN)


@router.post("/tokens", status_code=201)
def create_token(
    body: TokenRequest, who: Principal = Depends(require(*TOKEN_MINTERS)), rt: Runtime = Depends(runtime)
) -> dict[str, object]:
    """Issue an API token with the caller's tenant and role (shown once; stored only as a hash)."""
    lifetime = timedelta(days=body.days)
    token = rt.identity.issue_api_token(who, body.name, lifetime)
    return {"token": token, "name": body.name, "expires_at": (datetime.now(UTC) + lifetime).isoformat()}
