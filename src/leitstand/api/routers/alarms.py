"""Alarms (ISA-18.2): the console's list and stream, one alarm with its journal, and operator actions.

Alarms are the tenant's own and are not shared under agreements. Viewers read; operators, engineers and
tenant admins acknowledge, shelve and comment; taking an alarm out of service is for engineers and
tenant admins (it is a maintenance decision), and needs a comment saying why.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from leitstand.access.policy import ReadScope
from leitstand.api.deps import credential_secret, own_data, require, runtime
from leitstand.api.errors import AUTHENTICATED
from leitstand.api.live import LiveHub
from leitstand.api.runtime import Runtime
from leitstand.domain.alarms import Alarm, AlarmState
from leitstand.domain.errors import Unauthenticated
from leitstand.domain.tenancy import Principal, Role
from leitstand.watch.alarms import AlarmBook
from leitstand.watch.model import AlarmNotice

router = APIRouter(prefix="/api/v1/alarms", tags=["alarms"], responses=AUTHENTICATED)
OPERATOR = require(Role.OPERATOR, Role.ENGINEER, Role.TENANT_ADMIN)
MAINTENANCE = require(Role.ENGINEER, Role.TENANT_ADMIN)
ALARM_ID = Path(ge=1, le=2**31 - 1, description="The alarm's id.")
KEEPALIVE_S = 15.0
# What the console shows by default: everything that wants attention or is silenced.
OPEN_STATES = tuple(s for s in AlarmState if s != AlarmState.NORMAL)


def console(rt: Runtime, tenant: str, states: list[AlarmState] | None, area: str | None) -> dict[str, Any]:
    """The alarm list as the console shows it, with counts per state and priority."""
    book = rt.watch.book(tenant)
    alarms = book.alarms(states if states else OPEN_STATES, area)
    every = book.alarms()
    by_state = {s.value: sum(1 for a in every if a.state == s) for s in AlarmState}
    return {
        "alarms": [a.document() for a in alarms],
        "summary": {
            "states": by_state,
            "unacknowledged": by_state[AlarmState.UNACKNOWLEDGED]
            + by_state[AlarmState.RETURNED_UNACKNOWLEDGED],
            "suppressed": sum(1 for a in alarms if a.suppressed is not None),
            "flood_suppressed": book.flood_suppressed,
        },
    }


@router.get("")
def list_alarms(
    state: list[AlarmState] | None = Query(None, description="Only these states (default: all but normal)."),
    area: str | None = Query(None, max_length=64, description="Only this operator area (a site by default)."),
    scope: ReadScope = Depends(own_data),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    """Your alarms, most urgent and newest first, with counts per state; suppressed ones say why
    (chattering, flood, consequential: `group_id` is the first-out alarm)."""
    return console(rt, scope.tenant, state, area)


@router.get("/stream", response_class=StreamingResponse)
async def alarm_stream(
    request: Request,
    scope: ReadScope = Depends(own_data),
    rt: Runtime = Depends(runtime),
) -> StreamingResponse:
    """`text/event-stream` of `alarms` events (what `GET /api/v1/alarms` gives): one at once, then one
    after every alarm change. Ends with an `end` event once the credential is no longer valid."""
    hub: LiveHub = request.app.state.alarms
    secret = credential_secret(request) or ""
    tenant = scope.tenant

    async def events() -> AsyncIterator[bytes]:
        while not await request.is_disconnected():
            try:
                await run_in_threadpool(rt.identity.authenticate, secret)
            except Unauthenticated:
                yield b'event: end\ndata: {"reason": "unauthenticated"}\n\n'
                return
            seen = hub.generation(tenant)
            data = await run_in_threadpool(console, rt, tenant, None, None)
            yield b"event: alarms\ndata: " + orjson.dumps(data) + b"\n\n"
            if not await hub.wait(tenant, seen, KEEPALIVE_S):
                yield b": keep-alive\n\n"
            await asyncio.sleep(0.2)  # changes in quick succession arrive as one update

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


@router.get("/{alarm_id}")
def get_alarm(
    alarm_id: int = ALARM_ID,
    limit: int = Query(200, ge=1, le=10_000, description="Newest journal entries to return."),
    scope: ReadScope = Depends(own_data),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    """One alarm and its journal (oldest first): activations, clearances and every operator action, with
    who, when and why."""
    book = rt.watch.book(scope.tenant)
    return {
        **book.alarm(alarm_id).document(),
        "journal": [e.document() for e in book.journal(alarm_id, limit)],
    }


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str | None = Field(None, max_length=2000, description="Why; kept in the alarm's journal.")


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str = Field(min_length=1, max_length=2000, description="Why; kept in the alarm's journal.")


class Shelving(BaseModel):
    """Until when to shelve: `until` (with a UTC offset) or `minutes` from now."""

    model_config = ConfigDict(extra="forbid")
    until: datetime | None = None
    minutes: float | None = Field(None, gt=0, le=7 * 24 * 60)
    comment: str | None = Field(None, max_length=2000)

    @model_validator(mode="after")
    def _one(self) -> Shelving:
        if (self.until is None) == (self.minutes is None):
            raise ValueError("give either until or minutes")
        if self.until is not None and self.until.tzinfo is None:
            raise ValueError("until needs a UTC offset")
        return self


def _acted(rt: Runtime, who: Principal, done: tuple[Alarm, AlarmNotice]) -> dict[str, Any]:
    """After an operator action: notify, audit, and answer with the alarm as it is now."""
    alarm, notice = done
    rt.watch.publish(notice)
    rt.access.audit.record(
        who, f"alarm_{notice.action}", who.tenant_id, f"alarm:{alarm.id}", rule=alarm.rule_id
    )
    return alarm.document()


def _book(rt: Runtime, who: Principal) -> AlarmBook:
    return rt.watch.book(who.tenant_id)


@router.post("/{alarm_id}/acknowledge")
def acknowledge(
    alarm_id: int = ALARM_ID,
    body: Note = Body(default_factory=Note),
    who: Principal = Depends(OPERATOR),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    """Acknowledge: unacknowledged → acknowledged, returned unacknowledged → normal (409 otherwise)."""
    return _acted(rt, who, _book(rt, who).acknowledge(alarm_id, who.username, body.comment))


@router.post("/{alarm_id}/shelve")
def shelve(
    alarm_id: int = ALARM_ID,
    body: Shelving = Body(),
    who: Principal = Depends(OPERATOR),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    """Shelve until a time at most a week ahead: activations are recorded, not annunciated; at the expiry
    the alarm comes back (unacknowledged if its condition is active)."""
    until = body.until or datetime.now(UTC) + timedelta(minutes=body.minutes or 0)
    return _acted(rt, who, _book(rt, who).shelve(alarm_id, who.username, until.astimezone(UTC), body.comment))


@router.post("/{alarm_id}/unshelve")
def unshelve(
    alarm_id: int = ALARM_ID,
    body: Note = Body(default_factory=Note),
    who: Principal = Depends(OPERATOR),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    """End a shelving early."""
    return _acted(rt, who, _book(rt, who).unshelve(alarm_id, who.username, body.comment))


@router.post("/{alarm_id}/out-of-service")
def out_of_service(
    alarm_id: int = ALARM_ID,
    body: Reason = Body(),
    who: Principal = Depends(MAINTENANCE),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    """Take an alarm out of service (engineers and tenant admins; a comment is required)."""
    return _acted(rt, who, _book(rt, who).remove_from_service(alarm_id, who.username, body.comment))


@router.post("/{alarm_id}/in-service")
def in_service(
    alarm_id: int = ALARM_ID,
    body: Note = Body(default_factory=Note),
    who: Principal = Depends(MAINTENANCE),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    """Return an alarm to service."""
    return _acted(rt, who, _book(rt, who).return_to_service(alarm_id, who.username, body.comment))


@router.post("/{alarm_id}/comments")
def comment(
    alarm_id: int = ALARM_ID,
    body: Reason = Body(),
    who: Principal = Depends(OPERATOR),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    """Add a comment to the alarm's journal."""
    return _acted(rt, who, _book(rt, who).comment(alarm_id, who.username, body.comment))
