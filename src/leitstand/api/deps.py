"""Request dependencies: the runtime and the authenticated principal (bearer token or session cookie)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, Request

from leitstand.access.identity import SESSION_COOKIE
from leitstand.api.runtime import Runtime
from leitstand.domain.errors import Forbidden, Unauthenticated
from leitstand.domain.tenancy import Principal, Role


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def credential_secret(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(SESSION_COOKIE)


def principal(request: Request, rt: Runtime = Depends(runtime)) -> Principal:
    """The caller, or 401. Every query a handler runs is scoped to `principal.tenant_id`."""
    secret = credential_secret(request)
    if not secret:
        raise Unauthenticated("send 'Authorization: Bearer <token>' or log in")
    return rt.identity.authenticate(secret)


def require(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency that lets only the given roles through."""

    def check(who: Principal = Depends(principal)) -> Principal:
        if who.role not in roles:
            raise Forbidden(f"role {who.role.value!r} may not do this; needs one of {', '.join(roles)}")
        return who

    return check


WRITERS = (Role.OPERATOR, Role.ENGINEER, Role.TENANT_ADMIN, Role.GATEWAY)
MODELLERS = (Role.ENGINEER, Role.TENANT_ADMIN)
