"""Builds the FastAPI application around a Runtime: routers, error rendering, metrics, the web UI."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from prometheus_client import Counter, Histogram

from leitstand import __version__
from leitstand.api import errors
from leitstand.api.live import LiveHub
from leitstand.api.routers import (
    accounts,
    admin,
    agreements,
    alarms,
    assets,
    auth,
    connections,
    health,
    ingest,
    kpi,
    live,
    watch,
)
from leitstand.api.runtime import Runtime
from leitstand.web import pages

REQUESTS = Counter("leitstand_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("leitstand_http_request_seconds", "HTTP request duration", ["method", "route"])


def create_app(rt: Runtime) -> FastAPI:
    """The app for one runtime; the lifespan starts the writer and stops the runtime at shutdown."""
    hub = LiveHub()
    rt.pipeline.on_commit(hub.committed)
    alarm_hub = LiveHub()  # woken by every alarm change, for the alarm console's stream
    rt.watch.on_notice(lambda notice: alarm_hub.committed({notice.tenant}))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        hub.bind(asyncio.get_running_loop())
        alarm_hub.bind(asyncio.get_running_loop())
        rt.start()
        try:
            yield
        finally:
            rt.stop()

    app = FastAPI(
        title="Leitstand",
        version=__version__,
        summary="Open industrial cloud: connected plants, OEE, faults, logistics, supply chain.",
        openapi_url="/openapi.json",
        docs_url=None,  # served below from local assets, never from a CDN
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.runtime = rt
    app.state.live = hub
    app.state.alarms = alarm_hub
    errors.install(app)

    @app.middleware("http")
    async def measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        LATENCY.labels(request.method, template).observe(time.perf_counter() - started)
        REQUESTS.labels(request.method, template, str(response.status_code)).inc()
        return response

    routers = (
        health,
        auth,
        accounts,
        agreements,
        admin,
        assets,
        ingest,
        kpi,
        connections,
        live,
        alarms,
        watch,
    )
    for module in routers:
        app.include_router(module.router)
    app.include_router(auth.well_known)

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        """Swagger UI for the OpenAPI document, with its assets from /static/vendor."""
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Leitstand API",
            swagger_js_url="/static/vendor/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
        )

    pages.install(
        app,
        rt.identity,
        lambda request, username, password: auth.login_checked(rt, request, username, password),
        secure_cookie=rt.settings.session_cookie_secure,
    )
    return app
