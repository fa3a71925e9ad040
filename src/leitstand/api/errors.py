"""The one place that turns exceptions into responses: problem+json (RFC 9457) for the API, HTML for pages."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match

from leitstand.domain.errors import LeitstandError, Overloaded, Unauthenticated

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"


class Problem(BaseModel):
    """An error answer (RFC 9457). `errors` lists the fields of a 422; `Retry-After` comes with 429."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[dict[str, Any]] | None = None


_MEANINGS = {
    400: "The body is not readable as the declared media type.",
    401: "No credential, or one that is invalid, expired or revoked.",
    403: "The caller's role may not do this.",
    404: "Not found, or not yours: foreign and missing objects get the same answer.",
    409: "It exists already.",
    413: "The body is larger than allowed.",
    415: "The media type is not one this operation reads.",
    422: "The input is invalid; `detail` and `errors` say where and why.",
    429: "A rate limit, quota or the ingest queue is full; retry after `Retry-After` seconds.",
    503: "A component the request needs is not running.",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the error statuses an operation may answer, as problem+json."""
    schema = Problem.model_json_schema()
    return {s: {"description": _MEANINGS[s], "content": {PROBLEM: {"schema": schema}}} for s in statuses}


# What every authenticated operation may answer besides its success.
AUTHENTICATED = problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 429)


def problem(status: int, code: str, detail: str, instance: str, **extra: Any) -> JSONResponse:
    body = {
        "type": f"/problems/{code}",
        "title": code.replace("_", " "),
        "status": status,
        "detail": detail,
        "instance": instance,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def render(request: Request, status: int, code: str, detail: str, **extra: Any) -> Response:
    if _wants_html(request):
        if status == 401:
            # the query too, so a deep link (a chart of one machine, say) survives the login
            here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(here, safe='/')}", status_code=303)
        return HTMLResponse(
            f"<!doctype html><title>{status}</title><h1>{status}</h1><p>{_escape(detail)}</p>",
            status_code=status,
        )
    return problem(status, code, detail, request.url.path, **extra)


def install(app: FastAPI) -> None:
    @app.exception_handler(LeitstandError)
    async def leitstand_error(request: Request, exc: LeitstandError) -> Response:
        response = render(request, exc.status, exc.code, str(exc))
        if isinstance(exc, Overloaded):
            response.headers["Retry-After"] = str(exc.retry_after_s)
        if isinstance(exc, Unauthenticated):
            response.headers.setdefault("WWW-Authenticate", "Bearer")
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"loc": list(e.get("loc", ())), "message": e.get("msg", "")} for e in exc.errors()]
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['message']}" for e in errors)
        return render(request, 422, "invalid_input", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        response = render(request, exc.status_code, code, str(exc.detail))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        if exc.status_code == 405:  # Starlette names only the first route's methods
            response.headers["Allow"] = ", ".join(sorted(_methods_for(request)))
        return response

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return render(request, 500, "internal_error", "an unexpected error occurred; it has been logged")


def _routes(routes: list[BaseRoute]) -> list[BaseRoute]:
    flat: list[BaseRoute] = []
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's included routers
        flat.extend(_routes(included.routes) if included is not None else [route])
    return flat


def _methods_for(request: Request) -> set[str]:
    """Every method some route serves at the request's path."""
    methods: set[str] = set()
    for route in _routes(request.app.router.routes):
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return methods


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
