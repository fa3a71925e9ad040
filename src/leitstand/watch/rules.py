"""Rules as data: what to watch on which assets, validated against the asset model before anything runs.

A rule names its targets (asset ids, machine types, or everything under an asset), what it looks at
(a signal, the machine state, the counts) and when it fires. Every rule has a priority and optional
on/off delays; thresholds have a hysteresis dead band. Validation happens once, at configuration time,
so an unknown asset or signal, a bad expression or a contradictory setting is refused with a message
that names the rule and the field, and never surfaces while data streams.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from leitstand.domain.assets import ID_PATTERN, Asset, AssetLevel
from leitstand.domain.errors import InputError
from leitstand.watch.model import Priority

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
assert _ID[1:-1] == ID_PATTERN.pattern


class Targets(BaseModel):
    """Which assets a rule watches: the union of the listed assets, the machines of the listed types,
    and every machine under the listed assets (a line, an area, a site)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    assets: tuple[str, ...] = ()
    machine_types: tuple[str, ...] = ()
    under: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _some(self) -> Targets:
        if not (self.assets or self.machine_types or self.under):
            raise ValueError("name at least one of assets, machine_types or under")
        return self


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=_ID)
    name: str = Field(default="", max_length=200)
    targets: Targets
    priority: Priority = Priority.MEDIUM
    on_delay_s: float = Field(default=0.0, ge=0, le=7 * 86400)
    off_delay_s: float = Field(default=0.0, ge=0, le=7 * 86400)
    # A condition that held across a gap in the data longer than this is not known to have held.
    max_gap_s: float = Field(default=600.0, gt=0)
    enabled: bool = True

    @property
    def title(self) -> str:
        return self.name or self.id


class _SignalRule(_Rule):
    signal: str = Field(pattern=_ID)
    # Evaluate only while the machine is in one of these states (e.g. vibration matters while RUNNING).
    while_state: tuple[str, ...] = ()


class ThresholdRule(_SignalRule):
    """Fires while the signal is above `above` (or below `below`); clears once it is `hysteresis` back
    inside. Alternatively `when`, an expression over `value` and `rate` (per minute), e.g.
    `value > 80 and rate > 2`."""

    kind: Literal["threshold"]
    above: float | None = None
    below: float | None = None
    hysteresis: float = Field(default=0.0, ge=0)
    when: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _one_form(self) -> ThresholdRule:
        forms = [self.above is not None or self.below is not None, self.when is not None]
        if forms.count(True) != 1:
            raise ValueError("give either above/below or when, not both and not neither")
        if self.when is not None and self.hysteresis:
            raise ValueError("hysteresis applies to above/below; an expression states its own bounds")
        if self.above is not None and self.below is not None:
            if self.below >= self.above:
                raise ValueError(f"below ({self.below}) must be less than above ({self.above})")
            if 2 * self.hysteresis >= self.above - self.below:
                raise ValueError(
                    "the hysteresis bands overlap (2 × hysteresis >= above - below): it could never clear"
                )
        return self


class RateRule(_SignalRule):
    """Fires while the signal changes faster than the limits, in units per minute."""

    kind: Literal["rate_of_change"]
    rise_per_min: float | None = Field(default=None, gt=0)
    fall_per_min: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _some(self) -> RateRule:
        if self.rise_per_min is None and self.fall_per_min is None:
            raise ValueError("give rise_per_min, fall_per_min or both")
        return self


class StaleRule(_SignalRule):
    """Fires when no sample of the signal arrived for `max_age_s`, judged by the tenant's newest sample."""

    kind: Literal["stale"]
    max_age_s: float = Field(gt=0)

    @model_validator(mode="after")
    def _always(self) -> StaleRule:
        if self.while_state:
            raise ValueError("while_state does not apply to stale: a signal is expected in every state")
        return self


class FlatlineRule(_SignalRule):
    """Fires when the signal has not changed by more than `tolerance` for `min_duration_s`: a stuck
    sensor reports, but always the same value."""

    kind: Literal["flatline"]
    min_duration_s: float = Field(gt=0)
    tolerance: float = Field(default=0.0, ge=0)


class StateDurationRule(_Rule):
    """Fires when a machine stays in one of `states` longer than `longer_than_s` (e.g. DOWN > 15 min)."""

    kind: Literal["state_duration"]
    states: tuple[str, ...] = Field(min_length=1)
    longer_than_s: float = Field(gt=0)


class ScrapRateRule(_Rule):
    """Fires while scrap / produced over the last `window_s` exceeds `above` (with at least
    `min_produced` units in the window); clears once it is `hysteresis` below. With `significance_z`,
    the scrap must also exceed the machine's own normal rate (learned from its first `baseline_units`)
    by that many binomial standard errors: machines differ, and few units make a noisy ratio."""

    kind: Literal["scrap_rate"]
    window_s: float = Field(gt=0, le=7 * 86400)
    above: float = Field(gt=0, lt=1)
    hysteresis: float = Field(default=0.0, ge=0, lt=1)
    min_produced: int = Field(default=20, ge=1)
    significance_z: float | None = Field(default=None, gt=0, le=20)
    baseline_units: int = Field(default=2000, ge=100, le=10_000_000)

    @model_validator(mode="after")
    def _clears(self) -> ScrapRateRule:
        if self.hysteresis >= self.above:
            raise ValueError("hysteresis must be less than above, or the alarm could never clear")
        if "max_gap_s" not in self.model_fields_set:  # count records come minutes apart: the window decides
            object.__setattr__(self, "max_gap_s", max(self.max_gap_s, self.window_s))
        return self


class AnomalyRule(_SignalRule):
    """A per-signal streaming detector against the signal's own normal, learned from its first
    `baseline_samples` samples (while_state applies): robust z-score (median and MAD), EWMA of the
    z-scores, or a CUSUM of them. `side` says which deviations count; `transform: log` measures them
    as ratios."""

    kind: Literal["anomaly"]
    method: Literal["robust_z", "ewma", "cusum"] = "robust_z"
    side: Literal["high", "low", "both"] = "both"
    threshold: float | None = Field(default=None, gt=0)  # z for robust_z, L for ewma, h for cusum
    ewma_lambda: float = Field(default=0.2, gt=0, le=1)
    cusum_k: float = Field(default=0.5, ge=0)
    baseline_samples: int = Field(default=500, ge=30, le=100_000)
    # "log" for positive signals that vary by factors rather than amounts (vibration severity is close
    # to log-normal): deviations are then measured in ratios, and a skewed tail raises no false alarms.
    transform: Literal["none", "log"] = "none"

    @property
    def limit(self) -> float:
        if self.threshold is not None:
            return self.threshold
        # Defaults for a false alarm rarely (in-control run lengths of 10^4 samples and more, where
        # textbook settings give a few hundred: at one sample a minute, several false alarms a day).
        return {"robust_z": 5.0, "ewma": 4.0, "cusum": 10.0}[self.method]


class MultivariateRule(_Rule):
    """Per machine, the Mahalanobis distance of its signals together from their learned normal; fires
    when the squared distance exceeds the chi-square quantile `1 - alpha`. The alarm names the signals
    that contribute most."""

    kind: Literal["multivariate"]
    signals: tuple[str, ...] = Field(min_length=2, max_length=32)
    while_state: tuple[str, ...] = ()
    alpha: float = Field(default=1e-4, gt=0, lt=0.5)
    baseline_samples: int = Field(default=500, ge=50, le=100_000)

    @model_validator(mode="after")
    def _distinct(self) -> MultivariateRule:
        if len(set(self.signals)) != len(self.signals):
            raise ValueError("signals must be distinct")
        return self


RuleDocument = Annotated[
    ThresholdRule
    | RateRule
    | StaleRule
    | FlatlineRule
    | StateDurationRule
    | ScrapRateRule
    | AnomalyRule
    | MultivariateRule,
    Field(discriminator="kind"),
]


class RuleSet(BaseModel):
    """The rules of one tenant, as the configuration file or the API states them."""

    model_config = ConfigDict(extra="forbid")

    rules: list[RuleDocument] = Field(default_factory=list)


# expressions ---------------------------------------------------------------------------------------

EXPRESSION_NAMES = ("value", "rate")
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
}
_FUNCTIONS: dict[str, Callable[[Any], Any]] = {"abs": np.abs}

Columns = dict[str, np.ndarray]
Compiled = Callable[[Columns], Any]


def compile_expression(text: str) -> Compiled:
    """An expression over `value` and `rate` as a function of their columns, giving a boolean column.

    Allowed: numbers, the two names, + - * /, unary minus, abs(), comparisons < <= > >= (chained too),
    and, or, not, parentheses. Anything else is refused with the position of what is not allowed."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise InputError(f"expression {text!r} is not valid: {exc.msg} at column {exc.offset}") from None
    function = _compile(tree.body, text)
    if not _is_condition(tree.body):
        raise InputError(f"expression {text!r} must be a condition (a comparison), not a number")
    return function


def _is_condition(node: ast.expr) -> bool:
    if isinstance(node, ast.Compare | ast.BoolOp):
        return True
    return isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not)


def _compile(node: ast.expr, text: str) -> Compiled:
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    ):
        constant = float(node.value)
        return lambda columns: constant
    if isinstance(node, ast.Name):
        if node.id not in EXPRESSION_NAMES:
            raise InputError(
                f"expression {text!r} names {node.id!r}; it may use only {', '.join(EXPRESSION_NAMES)}"
            )
        name = node.id
        return lambda columns: columns[name]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        op, left, right = _BINARY[type(node.op)], _compile(node.left, text), _compile(node.right, text)
        return lambda columns: op(left(columns), right(columns))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _compile(node.operand, text)
        return lambda columns: -inner(columns)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        inner = _compile(node.operand, text)
        return lambda columns: ~np.asarray(inner(columns), dtype=bool)
    if isinstance(node, ast.BoolOp):
        parts = [_compile(v, text) for v in node.values]
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        return lambda columns: combine.reduce([np.asarray(p(columns), dtype=bool) for p in parts])
    if isinstance(node, ast.Compare) and all(type(o) in _COMPARE for o in node.ops):
        operands = [_compile(node.left, text), *(_compile(c, text) for c in node.comparators)]
        ops = [_COMPARE[type(o)] for o in node.ops]

        def compare(columns: Columns) -> Any:
            values = [o(columns) for o in operands]
            return np.logical_and.reduce(
                [np.asarray(op(values[i], values[i + 1]), dtype=bool) for i, op in enumerate(ops)]
            )

        return compare
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and len(node.args) == 1
        and not node.keywords
    ):
        function, argument = _FUNCTIONS[node.func.id], _compile(node.args[0], text)
        return lambda columns: function(argument(columns))
    raise InputError(
        f"expression {text!r}: {ast.unparse(node)!r} at column {node.col_offset + 1} is not allowed; "
        "use numbers, value, rate, + - * /, abs(), comparisons, and, or, not"
    )


# validation against the asset model -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BoundRule:
    """A validated rule and the machines it watches (ids, sorted)."""

    rule: Any  # one of the rule documents
    assets: tuple[str, ...]
    condition: Compiled | None = None  # the compiled `when` of a threshold rule

    @property
    def id(self) -> str:
        return str(self.rule.id)


def parse_rules(documents: Sequence[object], where: str = "rules") -> list[Any]:
    """Rule documents (dicts) as rule models; InputError names the rule and the field at fault."""
    parsed = []
    for index, document in enumerate(documents):
        label = f"{where}[{index}]"
        if isinstance(document, dict) and isinstance(document.get("id"), str):
            label += f" ({document['id']})"
        try:
            parsed.append(RuleSet.model_validate({"rules": [document]}).rules[0])
        except ValidationError as exc:
            kind = document.get("kind") if isinstance(document, dict) else None
            problems = "; ".join(f"{_field(e['loc'][2:], kind)}: {e['msg']}" for e in exc.errors())
            raise InputError(f"{label}: {problems}") from None
    return parsed


def _field(loc: tuple[int | str, ...], kind: object) -> str:
    """Where in a rule an error is, without the kind tag pydantic puts first."""
    if loc and loc[0] == kind:
        loc = loc[1:]
    return ".".join(str(p) for p in loc) or "rule"


def bind_rules(
    rules: Iterable[Any], assets: Sequence[Asset], known_states: frozenset[str] | None = None
) -> list[BoundRule]:
    """Resolve each rule's targets in the asset model and check that what it names exists there: assets,
    machine types, signals and (given `known_states`) state codes."""
    by_id = {a.id: a for a in assets}
    children: dict[str, list[str]] = {}
    for asset in assets:
        if asset.parent_id is not None:
            children.setdefault(asset.parent_id, []).append(asset.id)
    machine_types = {a.machine_type for a in assets if a.machine_type}
    bound, seen = [], set()
    for rule in rules:
        if rule.id in seen:
            raise InputError(f"rule {rule.id}: another rule has the same id")
        seen.add(rule.id)
        targets = _resolve(rule, by_id, children, machine_types)
        _check_signals(rule, targets, by_id)
        states = (*getattr(rule, "states", ()), *getattr(rule, "while_state", ()))
        unknown = [s for s in states if known_states is not None and s not in known_states]
        if unknown:
            raise InputError(
                f"rule {rule.id}: state {unknown[0]!r} is not a state code of this tenant "
                f"(known: {', '.join(sorted(known_states or ()))})"
            )
        condition = compile_expression(rule.when) if getattr(rule, "when", None) else None
        bound.append(BoundRule(rule, tuple(sorted(targets)), condition))
    return bound


def _resolve(
    rule: Any, by_id: dict[str, Asset], children: dict[str, list[str]], machine_types: set[str]
) -> set[str]:
    t: Targets = rule.targets
    for asset_id in (*t.assets, *t.under):
        if asset_id not in by_id:
            raise InputError(f"rule {rule.id}: targets name asset {asset_id!r}, which is not in the model")
    for machine_type in t.machine_types:
        if machine_type not in machine_types:
            known = ", ".join(sorted(machine_types)) or "none"
            raise InputError(f"rule {rule.id}: no machine has type {machine_type!r} (types: {known})")
    found = set(t.assets)
    found.update(a.id for a in by_id.values() if a.machine_type in t.machine_types)
    stack = list(t.under)
    while stack:
        asset_id = stack.pop()
        if by_id[asset_id].level == AssetLevel.MACHINE:
            found.add(asset_id)
        stack.extend(children.get(asset_id, ()))
    if not found:
        raise InputError(f"rule {rule.id}: its targets hold no machine")
    return found


def _check_signals(rule: Any, targets: set[str], by_id: dict[str, Asset]) -> None:
    wanted = getattr(rule, "signals", None) or ((rule.signal,) if hasattr(rule, "signal") else ())
    for asset_id in sorted(targets):
        declared = {s.name for s in by_id[asset_id].signals}
        missing = [s for s in wanted if s not in declared]
        if missing:
            raise InputError(
                f"rule {rule.id}: asset {asset_id} has no signal {missing[0]!r} "
                f"(it declares: {', '.join(sorted(declared)) or 'none'})"
            )
