"""The HTML pages: login and logout, the enterprise overview and one page per plant.

Pages are shells: they know who is logged in and nothing else. Their scripts read the JSON API and the
live stream with the session cookie, so a page shows exactly what the API lets its user see.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Form, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader

from leitstand import __version__
from leitstand.access.identity import SESSION_COOKIE, IdentityService, set_session_cookie
from leitstand.domain.errors import Forbidden, RateLimited, Unauthenticated
from leitstand.domain.tenancy import Principal

HERE = Path(__file__).parent
WINDOW_HOURS = (8, 24, 168)  # the window selector's choices
DEFAULT_WINDOW_HOURS = 24


LoginCheck = Callable[[Request, str, str], tuple[Principal, str, datetime]]


def install(app: FastAPI, identity: IdentityService, login: LoginCheck, secure_cookie: bool = False) -> None:
    """Add the page routes and serve /static; `login` checks a password (with the API's rate limits
    and audit); `secure_cookie` marks the session cookie Secure."""
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True)
    env.globals["version"] = __version__
    env.globals["window_hours"] = WINDOW_HOURS
    env.globals["default_window_hours"] = DEFAULT_WINDOW_HOURS
    templates = Jinja2Templates(env=env)

    def page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
        response = templates.TemplateResponse(request, name, context, status_code=status)
        response.headers["Cache-Control"] = "no-store"
        return response

    def logged_in(request: Request) -> Principal:
        secret = request.cookies.get(SESSION_COOKIE)
        if not secret:
            raise Unauthenticated("log in to see this page")
        return identity.authenticate(secret)

    @app.get("/login", include_in_schema=False)
    def login_form(request: Request, next: str = "/") -> Response:
        target = safe_next(next)
        try:
            logged_in(request)
        except Unauthenticated:
            return page(request, "login.html", next=target, username="", error=None)
        return RedirectResponse(target, status_code=303)

    @app.post("/login", include_in_schema=False)
    def login_submit(
        request: Request,
        username: str = Form("", max_length=200),
        password: str = Form("", max_length=1000),
        next: str = Form("/", max_length=2000),
    ) -> Response:
        require_same_origin(request)
        target = safe_next(next)
        try:
            _, secret, expires = login(request, username, password)
        except (Unauthenticated, RateLimited) as exc:
            limited = isinstance(exc, RateLimited)
            return page(
                request,
                "login.html",
                status=429 if limited else 401,
                next=target,
                username=username,
                error=f"Too many attempts: {exc}" if limited else "Unknown user name or wrong password.",
            )
        response = RedirectResponse(target, status_code=303)
        set_session_cookie(response, secret, expires, secure_cookie)
        return response

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request) -> Response:
        require_same_origin(request)
        secret = request.cookies.get(SESSION_COOKIE)
        if secret:
            identity.logout(secret)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    @app.get("/", include_in_schema=False)
    def enterprise_page(request: Request) -> Response:
        return page(request, "enterprise.html", principal=logged_in(request))

    @app.get("/kpi", include_in_schema=False)
    def kpi_page(request: Request) -> Response:
        return page(request, "kpi.html", principal=logged_in(request))

    @app.get("/spc", include_in_schema=False)
    def spc_page(request: Request) -> Response:
        return page(request, "spc.html", principal=logged_in(request))

    @app.get("/alarms", include_in_schema=False)
    def alarms_page(request: Request) -> Response:
        return page(request, "alarms.html", principal=logged_in(request))

    @app.get("/connections", include_in_schema=False)
    def connections_page(request: Request) -> Response:
        return page(request, "connections.html", principal=logged_in(request))

    @app.get("/plants/{site_id}", include_in_schema=False)
    def plant_page(request: Request, site_id: str) -> Response:
        # Whether the plant exists (for this tenant) is the API's answer; the page script shows it.
        return page(request, "plant.html", principal=logged_in(request), site_id=site_id)

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")


def safe_next(target: str) -> str:
    """`target` if it is a path on this site, else `/`: a login link must not lead elsewhere."""
    parts = urlsplit(target)
    if (
        not target.startswith("/")
        or target.startswith(("//", "/\\"))
        or parts.scheme
        or parts.netloc
        or any(ord(c) < 32 or c == "\\" for c in target)
    ):
        return "/"
    return target


def require_same_origin(request: Request) -> None:
    """Refuse a form post that a browser sent from another site (login and logout CSRF)."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise Forbidden("cross-site form posts are not accepted")
