"""Detection rules (list, create, remove, and try them on stored history: a backtest) and statistical
process control charts of stored measurements.

Rules of the config file are listed too (`source: config`) but change only there. A rule is checked
against the asset model when it is made: an unknown asset, machine type, signal or state, or an invalid
expression, is answered with 422 naming the rule and the field. See docs/watch/rules.md.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Body, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from leitstand.access.policy import ReadScope
from leitstand.api.deps import own_data, require, runtime
from leitstand.api.errors import AUTHENTICATED
from leitstand.api.routers.kpi import Window, window_of
from leitstand.api.runtime import Runtime
from leitstand.domain.assets import ID_PATTERN
from leitstand.domain.errors import InputError, NotFound
from leitstand.domain.tenancy import Principal, Role
from leitstand.watch.spc import ChartKind, RuleSet, capability, control_chart

router = APIRouter(prefix="/api/v1/watch", tags=["watch"], responses=AUTHENTICATED)
ENGINEER = require(Role.ENGINEER, Role.TENANT_ADMIN)
RULE_ID = Path(pattern=f"^{ID_PATTERN.pattern}$", description="The rule's id.")
EXAMPLE: dict[str, Any] = {
    "id": "spindle-hot",
    "name": "Spindle temperature high",
    "kind": "threshold",
    "targets": {"machine_types": ["press"]},
    "signal": "temperature",
    "above": 85,
    "hysteresis": 3,
    "on_delay_s": 60,
    "priority": "high",
}
MAX_BACKTEST_DAYS = 31


class RuleBody(BaseModel):
    """A rule document: `id`, `kind` and the kind's fields (docs/watch/rules.md); checked in full
    against the rule kinds and the asset model (422 names the field)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [EXAMPLE]})
    id: str = Field(pattern=f"^{ID_PATTERN.pattern}$")
    kind: str = Field(max_length=32)


@router.get("/rules")
def list_rules(scope: ReadScope = Depends(own_data), rt: Runtime = Depends(runtime)) -> dict[str, Any]:
    """Your rules: the document, `source` (config or api), and `error` when a rule does not run (its
    machine left the asset model, say)."""
    return {"rules": rt.watch.rules(scope.tenant)}


@router.post("/rules", status_code=201)
def create_rule(
    doc: RuleBody = Body(), who: Principal = Depends(ENGINEER), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    """Create a rule; it is evaluated on every batch stored from now on (engineers and tenant admins)."""
    stored = rt.watch.add_rule(who.tenant_id, doc.model_dump(), who.username)
    rt.access.audit.record(who, "watch_rule_created", who.tenant_id, f"rule:{doc.id}", kind=doc.kind)
    return stored


@router.delete("/rules/{rule_id}", status_code=204)
def delete_rule(
    rule_id: str = RULE_ID, who: Principal = Depends(ENGINEER), rt: Runtime = Depends(runtime)
) -> None:
    """Remove a rule made through the API. Its alarms stay with their journal; those still active end,
    with the reason in the journal."""
    rt.watch.delete_rule(who.tenant_id, rule_id)
    rt.access.audit.record(who, "watch_rule_deleted", who.tenant_id, f"rule:{rule_id}")


class Backtest(BaseModel):
    """Rules to try and the window of stored history to try them on (at most 31 days)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"rules": [EXAMPLE]}]})
    rules: list[RuleBody] = Field(min_length=1, max_length=50)
    start: datetime | None = Field(None, description="Default: 24 hours before `end`.")
    end: datetime | None = Field(None, description="Default: now.")

    def window(self) -> tuple[datetime, datetime]:
        end = self.end or datetime.now(UTC)
        return self.start or end - timedelta(days=1), end

    @model_validator(mode="after")
    def _window(self) -> Backtest:
        for value in (self.start, self.end):
            if value is not None and value.tzinfo is None:
                raise ValueError("start and end need a UTC offset")
        start, end = self.window()
        if not start < end <= start + timedelta(days=MAX_BACKTEST_DAYS):
            raise ValueError(
                f"start must lie before end, and the window span at most {MAX_BACKTEST_DAYS} days"
            )
        return self


@router.post("/backtest")
def backtest(
    body: Backtest = Body(), scope: ReadScope = Depends(own_data), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    """What the given rules would have detected over stored history: each activation and clearance with
    its explanation. Nothing is stored and no alarm is raised."""
    start, end = body.window()
    docs = [r.model_dump() for r in body.rules]
    # Up to now at most: data that has not come yet is not stale.
    found = rt.watch.backtest(scope.tenant, docs, rt.events, start, max(start, min(end, datetime.now(UTC))))
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "detections": [
            {
                "rule_id": d.rule_id,
                "asset_id": d.asset_id,
                "at": d.at.isoformat(),
                "active": d.active,
                "value": d.value,
                "message": d.message,
                "explanation": d.explanation,
            }
            for d in found
        ],
    }


MAX_SPC_POINTS = 100_000


@router.get("/spc")
def spc(
    asset_id: str = Query(pattern=f"^{ID_PATTERN.pattern}$", description="The machine."),
    signal: str = Query(pattern=f"^{ID_PATTERN.pattern}$", description="The quality measurement."),
    requested: Window = Depends(window_of(24 * 7)),
    chart: ChartKind = Query(ChartKind.I_MR, description="i_mr (single values), xbar_r or xbar_s."),
    subgroup_size: int = Query(1, ge=1, le=100, description="Measurements per subgroup (1 for i_mr)."),
    baseline: int | None = Query(
        None, ge=2, le=MAX_SPC_POINTS, description="Leading subgroups the limits come from; default all."
    ),
    rules: RuleSet = Query(RuleSet.WESTERN_ELECTRIC, description="western_electric (1-4) or nelson (1-8)."),
    lsl: float | None = Query(None, description="Lower specification limit, for Cp/Cpk/Pp/Ppk."),
    usl: float | None = Query(None, description="Upper specification limit."),
    scope: ReadScope = Depends(own_data),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    """A control chart of one signal of one machine over the window: points, center line and limits
    from the baseline, run-rule violations (Western Electric or Nelson), and with spec limits the
    process capability. Samples of quality BAD are left out; at most 100,000 per chart."""
    lo, hi = requested
    if hi <= lo or hi - lo > timedelta(days=rt.settings.max_query_days):
        raise InputError(
            f"the window must end after it starts and span at most {rt.settings.max_query_days:g} days"
        )
    asset = next((a for a in rt.asset_cache.assets(scope.tenant) if a.id == asset_id), None)
    if asset is None or signal not in {s.name for s in asset.signals}:
        raise NotFound(f"no signal {signal!r} on asset {asset_id!r}")
    table = rt.events.query(
        "SELECT ts, value FROM samples WHERE tenant = $tenant AND asset_id = $asset AND signal = $signal "
        "AND ts >= $lo AND ts < $hi AND coalesce(quality, 'GOOD') <> 'BAD' ORDER BY ts LIMIT $limit",
        {
            "tenant": scope.tenant,
            "asset": asset_id,
            "signal": signal,
            "lo": lo,
            "hi": hi,
            "limit": MAX_SPC_POINTS + 1,
        },
    )
    if table.num_rows > MAX_SPC_POINTS:
        raise InputError(f"more than {MAX_SPC_POINTS:,} measurements in the window; choose a shorter one")
    values = table["value"].to_numpy(zero_copy_only=False).astype(float)
    ts = table["ts"].to_numpy(zero_copy_only=False)
    result = control_chart(values, chart, subgroup_size, baseline, timestamps=ts, rules=rules)
    answer: dict[str, Any] = {
        "asset_id": asset_id,
        "signal": signal,
        "unit": next(s.unit for s in asset.signals if s.name == signal),
        "window": {"start": lo.isoformat(), "end": hi.isoformat()},
        "chart": result.document(),
        "capability": None,
    }
    if lsl is not None or usl is not None:
        answer["capability"] = capability(values, lsl, usl, chart, subgroup_size).document()
    return answer
