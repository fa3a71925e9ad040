"""Login, logout, the current principal and API tokens."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from leitstand.access.identity import SESSION_COOKIE, set_session_cookie
from leitstand.api.deps import credential_secret, principal, runtime
from leitstand.api.runtime import Runtime
from leitstand.domain.tenancy import Principal

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class LoginRequest(BaseModel):
    model_config = {"extra": "forbid"}
    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1000)


class TokenRequest(BaseModel):
    model_config = {"extra": "forbid"}
    name: str = Field(min_length=1, max_length=200)
    days: int | None = Field(None, ge=1, le=3650, description="Lifetime; none means until revoked.")


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


@router.post("/tokens", status_code=201)
def create_token(
    body: TokenRequest, who: Principal = Depends(principal), rt: Runtime = Depends(runtime)
) -> dict[str, object]:
    """Issue an API token for the caller (shown once; stored only as a hash)."""
    lifetime = timedelta(days=body.days) if body.days else None
    return {"token": rt.identity.issue_api_token(who, body.name, lifetime), "name": body.name}
