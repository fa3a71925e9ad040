"""Request dependencies: the runtime, the authenticated principal and the scope of a read.

Every read endpoint takes its scope from `reading(kind)` (or `own_data`), which asks the access layer;
a test checks that no read endpoint goes without one.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from fastapi import Depends, Path, Query, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from leitstand.access.identity import SESSION_COOKIE
from leitstand.access.policy import ReadScope
from leitstand.api.runtime import Runtime
from leitstand.domain.agreements import DataKind
from leitstand.domain.errors import Forbidden, Unauthenticated
from leitstand.domain.tenancy import Principal, Role


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


# Declared so that the OpenAPI document says how to authenticate; `credential_secret` reads both.
_BEARER = HTTPBearer(auto_error=False, bearerFormat="JWT", description="A session token or an API key.")
_COOKIE = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="The session cookie of a login.")


def credential_secret(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(SESSION_COOKIE)


def principal(
    request: Request,
    rt: Runtime = Depends(runtime),
    _bearer: HTTPAuthorizationCredentials | None = Depends(_BEARER),
    _cookie: str | None = Depends(_COOKIE),
) -> Principal:
    """The caller, or 401; then the caller's tenant spends one request of its rate limit (or 429)."""
    secret = credential_secret(request)
    if not secret:
        raise Unauthenticated("send 'Authorization: Bearer <token>' or log in")
    who = rt.identity.authenticate(secret)
    rt.limits.requests.take(who.tenant_id)
    return who


def require(*roles: Role | Collection[Role]) -> Callable[[Principal], Principal]:
    """A dependency that lets only the given roles (or sets of roles) through."""
    allowed: set[Role] = set()
    for r in roles:
        allowed.update([r] if isinstance(r, Role) else r)

    def check(who: Principal = Depends(principal)) -> Principal:
        if who.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise Forbidden(f"role {who.role.value!r} may not do this; needs one of {names}")
        return who

    return check


def id_path() -> Any:
    """A numeric id in the path (users, agreements): it fits a 32-bit integer column on every metadata
    database. A new parameter object per use: FastAPI binds each to one parameter name."""
    return Path(ge=1, le=2**31 - 1)


PROVIDER_QUERY = Query(
    None,
    description="Read data that this tenant shares with yours under an agreement in force "
    "(its tenant id); default: your own tenant's data.",
)
WITHIN_QUERY = Query(None, description="Only this asset and what is below it.")


def reading(kind: DataKind) -> Callable[..., ReadScope]:
    """A dependency giving the scope of a read of `kind` data: own, or shared under an agreement."""

    def scope(
        request: Request,
        provider: str | None = PROVIDER_QUERY,
        within: str | None = WITHIN_QUERY,
        who: Principal = Depends(principal),
        rt: Runtime = Depends(runtime),
    ) -> ReadScope:
        return rt.access.read(who, kind, provider, within, target=request.url.path)

    return scope


def own_data(who: Principal = Depends(principal), rt: Runtime = Depends(runtime)) -> ReadScope:
    """The scope of a read that is never shared: the caller's own tenant."""
    return rt.access.own(who)
