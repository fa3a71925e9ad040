"""Liveness, readiness and Prometheus metrics (unauthenticated, for orchestrators and scrapers)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest

from leitstand.api.deps import runtime
from leitstand.api.errors import problem_responses
from leitstand.api.runtime import Runtime
from leitstand.domain.errors import NotReady

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", responses=problem_responses(503))
def readyz(rt: Runtime = Depends(runtime)) -> dict[str, object]:
    """The stores answer and the writer runs; 503 otherwise."""
    try:
        rt.metadata.ping()
        rt.events.query("SELECT 1")
    except Exception as exc:
        raise NotReady(f"a store does not answer: {exc}") from exc
    if not rt.pipeline.running:
        raise NotReady("the ingest writer is not running")
    return {"status": "ready", "checks": {"metadata": "ok", "events": "ok", "writer": "ok"}}


DUCKDB_MEMORY = Gauge(
    "leitstand_duckdb_memory_bytes",
    "Memory DuckDB accounts for in duckdb_memory(); its cache holds more, up to duckdb_memory_limit",
)


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(rt: Runtime = Depends(runtime)) -> Response:
    """Prometheus exposition of the process's metrics."""
    DUCKDB_MEMORY.set(rt.events.memory_bytes())
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
