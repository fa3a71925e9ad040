"""Rules are refused at configuration time with a message naming the rule and what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from leitstand.domain.errors import InputError
from leitstand.watch.rules import bind_rules, compile_expression, parse_rules

from .conftest import plant

STATES = frozenset({"RUNNING", "DOWN", "IDLE"})


def bind(doc: dict) -> list:
    return bind_rules(parse_rules([doc]), plant(), STATES)


def threshold(**extra: object) -> dict:
    return {"id": "hot", "kind": "threshold", "targets": {"assets": ["m0"]}, "signal": "temperature"} | extra


def test_targets_resolve_to_machines_by_id_type_and_subtree() -> None:
    assert bind(threshold(above=80))[0].assets == ("m0",)
    by_type = threshold(above=80, targets={"machine_types": ["press"]})
    assert bind(by_type)[0].assets == ("m0", "m2")
    assert bind(threshold(above=80, targets={"under": ["p1"]}))[0].assets == ("m0", "m1", "m2")


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (threshold(above=80, signal="pressure"), "asset m0 has no signal 'pressure'"),
        (threshold(above=80, targets={"assets": ["m9"]}), "asset 'm9', which is not in the model"),
        (threshold(above=80, targets={"machine_types": ["robot"]}), "no machine has type 'robot'"),
        (threshold(above=80, while_state=["RUNING"]), "state 'RUNING' is not a state code"),
        (threshold(when="value >"), "is not valid"),
        (threshold(when="temperature > 80"), "names 'temperature'; it may use only value, rate"),
        (threshold(when="__import__('os').system('x') > 1"), "is not allowed"),
        (threshold(when="value ** 2 > 1"), "is not allowed"),
        (threshold(when="value + 1"), "must be a condition"),
        (
            {
                "id": "mv",
                "kind": "multivariate",
                "targets": {"assets": ["m0"]},
                "signals": ["temperature", "x"],
            },
            "asset m0 has no signal 'x'",
        ),
    ],
)
def test_what_does_not_exist_or_parse_is_refused(doc: dict, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        bind(doc)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (threshold(), "give either above/below or when"),
        (threshold(above=80, when="value > 1"), "give either above/below or when"),
        (threshold(above=80, below=90), "below \\(90.0\\) must be less than above"),
        (threshold(above=80, kind="thresold"), "does not match any of the expected tags"),
        (threshold(above=80, id="bad id"), "id: String should match pattern"),
        (threshold(above=80, on_delay_s=-1), "on_delay_s: Input should be greater than or equal to 0"),
        (threshold(above="hot"), "above: Input should be a valid number"),
        (threshold(above=80, targets={}), "name at least one of assets"),
        (
            {"id": "r", "kind": "rate_of_change", "targets": {"assets": ["m0"]}, "signal": "temperature"},
            "give rise_per_min, fall_per_min or both",
        ),
        (
            {"id": "s", "kind": "scrap_rate", "targets": {"assets": ["m0"]}, "window_s": 600, "above": 1.5},
            "above: Input should be less than 1",
        ),
    ],
)
def test_malformed_rules_name_the_rule_and_field(doc: dict, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        parse_rules([doc])
    assert str(info.value).startswith("rules[0]")


def test_duplicate_rule_ids_are_refused() -> None:
    rules = parse_rules([threshold(above=80), threshold(above=90)])
    with pytest.raises(InputError, match="another rule has the same id"):
        bind_rules(rules, plant(), STATES)


def test_expressions_evaluate_as_columns() -> None:
    condition = compile_expression("abs(value - 50) > 10 and not rate < -1 or value <= 0")
    value = np.array([50.0, 65.0, 65.0, 0.0])
    rate = np.array([0.0, 0.0, -5.0, 0.0])
    assert condition({"value": value, "rate": rate}).tolist() == [False, True, False, True]
    chained = compile_expression("10 < value <= 20")
    assert chained({"value": np.array([10.0, 15.0, 20.0, 21.0]), "rate": np.zeros(4)}).tolist() == [
        False,
        True,
        True,
        False,
    ]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (threshold(above=80, below=60, hysteresis=12), "the hysteresis bands overlap"),
        (
            {
                "id": "s",
                "kind": "scrap_rate",
                "targets": {"assets": ["m0"]},
                "window_s": 600,
                "above": 0.1,
                "hysteresis": 0.1,
            },
            "hysteresis must be less than above",
        ),
        (
            {
                "id": "s",
                "kind": "stale",
                "targets": {"assets": ["m0"]},
                "signal": "temperature",
                "max_age_s": 60,
                "while_state": ["RUNNING"],
            },
            "while_state does not apply to stale",
        ),
    ],
)
def test_rules_that_could_never_clear_or_mean_nothing_are_refused(doc: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_rules([doc])
