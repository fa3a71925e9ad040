"""The one place that turns exceptions into responses: problem+json (RFC 9457) for the API, HTML for pages."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from leitstand.domain.errors import LeitstandError, Overloaded, Unauthenticated

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"


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
            return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
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
        return render(request, exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return render(request, 500, "internal_error", "an unexpected error occurred; it has been logged")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
