"""The isolation matrix: every operation of the OpenAPI document, called by every role of one tenant
with its own, a foreign, a non-existent and neighbouring ids, before an agreement, while it is in force
and after its revocation. A leak is any foreign name or id in an answer that the agreement in force does
not share, or a foreign id answered differently from a missing one. The counts go to
test-artifacts/security-matrix.json for the closing note; the test demands zero leaks."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from leitstand.api.runtime import Runtime
from leitstand.domain.assets import parse_asset_model
from leitstand.domain.records import RecordKind
from leitstand.domain.tenancy import Role
from leitstand.watch.model import Detection
from tests.access.helpers import SECRET_MACHINES, SHARED_MACHINES, feed, offer, provider_model, setup_provider
from tests.conftest import PASSWORD, login

ARTIFACTS = Path(__file__).parent.parent.parent / "test-artifacts"
# Not called here: login and logout are public (logout would end the caller's own session), and the
# endless live stream has its own tests (tests/api/test_live.py, tests/access/test_agreements.py).
SKIPPED = {
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/logout"),
    ("GET", "/api/v1/live/stream"),
    ("GET", "/api/v1/alarms/stream"),  # endless too; tests/api/test_alarms_api.py
}
SECRET_NAMES = ["SECRET-acme"]  # also the description of acme's connection
SHARED_NAMES = ["SHARED-acme"]
# Ids are canaries only where the prober never sent them as data: its ingest probes name the machines
# south-m2 and north-m2, which then stand in its own dead-letter store, rightly.
SECRET_IDS = [SECRET_MACHINES[0], "south-a", "south-l"]
SHARED_IDS = [SHARED_MACHINES[0], "north-a", "north-l"]
INGEST_PROBES = [SECRET_MACHINES[1], SHARED_MACHINES[1]]
ROLES = [Role.VIEWER, Role.OPERATOR, Role.ENGINEER, Role.PLANNER, Role.TENANT_ADMIN]


class World:
    """acme (the provider, with a shared and a secret plant), rival (whose accounts probe), third."""

    def __init__(self, client: TestClient, rt: Runtime) -> None:
        self.client, self.rt = client, rt
        setup_provider(rt)
        rt.metadata.import_asset_model("rival", parse_asset_model(rival_model()))
        feed(rt, "rival", ["r1-m1", "r1-m2"])
        rt.identity.create_tenant("third", "Third")
        rt.identity.create_user("third", "third-admin", PASSWORD, Role.TENANT_ADMIN)
        rt.identity.create_user("platform", "root", PASSWORD, Role.PLATFORM_ADMIN)
        for role in ROLES:
            if role not in (Role.VIEWER, Role.TENANT_ADMIN):
                rt.identity.create_user("rival", f"rival-{role.value}", PASSWORD, role)
        self.probe = rt.identity.create_user("rival", "rival-probe", PASSWORD, Role.VIEWER)
        self.acme_viewer = _user_id(rt, "acme-viewer")
        acme_admin = rt.metadata.user_by_name("acme-admin")
        rival_admin = rt.metadata.user_by_name("rival-admin")
        assert acme_admin is not None
        assert rival_admin is not None
        _, self.acme_key = _issue(rt, acme_admin[0])
        _, self.rival_key = _issue(rt, rival_admin[0])
        self.acme_headers = login(client, "acme-admin")
        self.acme_to_third = offer(client, self.acme_headers, consumer="third", scope="south")["id"]
        rival_headers = login(client, "rival-admin")
        self.rival_to_third = offer(
            client, rival_headers, consumer="third", scope="r1", name="rival's plant r1"
        )["id"]
        for headers, name in ((self.acme_headers, "acme-secret-uns"), (rival_headers, "rival-uns")):
            created = client.post(
                "/api/v1/connections",
                json={
                    "protocol": "mqtt",
                    "name": name,
                    "enabled": False,
                    "broker": {"host": "127.0.0.1"},
                    "description": f"SECRET-{name[:4]}",
                },
                headers=headers,
            )
            assert created.status_code == 201, created.text
        self.alarms = {}
        for headers, tenant, machine in (
            (self.acme_headers, "acme", "south-m1"),
            (rival_headers, "rival", "r1-m1"),
        ):
            rule = {
                "id": f"{tenant}-hot",
                "name": f"SECRET-{tenant} rule",
                "kind": "threshold",
                "targets": {"assets": [machine]},
                "signal": "temperature",
                "above": 80,
            }
            assert client.post("/api/v1/watch/rules", json=rule, headers=headers).status_code == 201
            detection = Detection(
                rule["id"], machine, datetime.now(UTC), True, 90.0, f"SECRET-{tenant} alarm"
            )
            self.alarms[tenant] = rt.watch.book(tenant).apply([detection])[0].alarm_id
        gateway = client.post("/api/v1/gateways", json={"name": "gw", "site": "r1"}, headers=rival_headers)
        self.callers: dict[str, dict[str, str]] = {
            f"rival-{r.value}": login(client, "rival-admin" if r is Role.TENANT_ADMIN else f"rival-{r.value}")
            for r in ROLES
        }
        self.callers["rival-gateway"] = {"authorization": f"Bearer {gateway.json()['token']}"}
        self.callers["platform-admin"] = login(client, "root")
        self.serial = itertools.count()


def rival_model() -> dict[str, Any]:
    model = provider_model("rival", "r1", "r2")
    for site in model["sites"]:
        site["name"] = site["name"].replace("SHARED-", "RIVAL-").replace("SECRET-", "RIVAL-")
    return model


def _user_id(rt: Runtime, name: str) -> int:
    found = rt.metadata.user_by_name(name)
    assert found is not None
    return found[0].user_id


def _issue(rt: Runtime, who: Any) -> tuple[str, str]:
    token, _ = rt.identity.issue_api_token(who, "matrix", timedelta(days=1))
    return token, rt.identity.token_id(token) or ""


def path_values(world: World, name: str, method: str) -> Iterator[tuple[str, str]]:
    """(variant, value) for a path parameter: own, foreign, missing and neighbouring ids."""
    if name == "asset_id":
        yield from [("own", "r1-m1"), ("foreign", "south-m1"), ("foreign", "north-m1"), ("missing", "zz-m9")]
    elif name == "user_id":
        own = world.probe.user_id
        if method != "DELETE":
            yield "own", str(own)
        yield from [("foreign", str(world.acme_viewer)), ("missing", "987654")]
        for near in (world.acme_viewer - 1, world.acme_viewer + 1):
            if world.rt.metadata.user(near) is not None and world.rt.metadata.user(near).tenant_id != "rival":
                yield "neighbour", str(near)
    elif name == "agreement_id":
        yield from [
            ("own", str(world.rival_to_third)),
            ("foreign", str(world.acme_to_third)),
            ("missing", "987654"),
            ("neighbour", str(world.acme_to_third + 1)),
        ]
    elif name == "token_id":
        yield from [("foreign", world.acme_key), ("missing", "no-such-token")]
    elif name == "kind":
        yield "own", "samples"
    elif name == "alarm_id":
        foreign = world.alarms["acme"]
        yield from [("own", str(world.alarms["rival"])), ("foreign", str(foreign)), ("missing", "987654")]
    elif name == "rule_id":
        if method != "DELETE":
            yield "own", "rival-hot"
        yield from [("foreign", "acme-hot"), ("missing", "no-such-rule")]
    elif name == "name":  # a connection
        if method != "DELETE":
            yield "own", "rival-uns"
        yield from [("foreign", "acme-secret-uns"), ("missing", "no-such-uns")]
    else:
        raise AssertionError(f"the matrix does not know path parameter {name!r}: add it")


QUERIES = [
    {},
    {"within": "r1"},
    {"within": "south"},
    {"provider": "acme"},
    {"provider": "acme", "within": "south-m1"},
    {"provider": "acme", "within": "north-m1"},
    {"provider": "ghost"},
    {"provider": "third"},
]


def body_for(world: World, method: str, path: str, ids: dict[str, str]) -> Any:
    n = next(world.serial)
    asset = ids.get("asset_id", "r1-m1")
    bodies: dict[tuple[str, str], Any] = {
        ("POST", "/api/v1/auth/tokens"): {"name": "probe", "days": 1},
        ("POST", "/api/v1/users"): {"username": f"probe-{n}", "password": PASSWORD, "role": "viewer"},
        ("PATCH", "/api/v1/users/{user_id}"): {"role": "viewer"},
        ("POST", "/api/v1/gateways"): {"name": f"gw-{n}", "site": "south" if n % 2 else "r2"},
        ("POST", "/api/v1/agreements"): {
            "consumer": "acme",
            "name": "probe",
            "scope": "south" if n % 2 else "r2",
            "kinds": ["kpi"],
            "purpose": "cx.quality.base:1",
        },
        ("POST", "/api/v1/admin/tenants"): {
            "id": f"t{n}",
            "name": "T",
            "admin_username": f"t{n}-admin",
            "admin_password": PASSWORD,
        },
        ("POST", "/api/v1/admin/keys/rotate"): {"retire_others": False},
        ("POST", "/api/v1/connections"): {
            "protocol": "mqtt",
            "name": f"probe-{n}",
            "enabled": False,
            "broker": {"host": "127.0.0.1"},
            **({"tenant": "acme"} if n % 2 else {}),
        },
        ("POST", "/api/v1/assets"): rival_model(),
        ("POST", "/api/v1/watch/rules"): probe_rule(n),
        ("POST", "/api/v1/watch/backtest"): {"rules": [probe_rule(n)]},
        ("POST", "/api/v1/alarms/{alarm_id}/shelve"): {"minutes": 5},
        ("POST", "/api/v1/alarms/{alarm_id}/out-of-service"): {"comment": "probe"},
        ("POST", "/api/v1/alarms/{alarm_id}/comments"): {"comment": "probe"},
        ("POST", "/api/v1/ingest/{kind}"): [
            {"asset_id": a, "signal": "temperature", "ts": "2026-11-21T00:00:00Z", "value": 1.0}
            for a in (asset, *INGEST_PROBES)
        ],
    }
    return bodies.get((method, path))


def probe_rule(n: int) -> dict[str, Any]:
    """A rule on the prober's machine or, every other time, on a foreign one."""
    machine = "south-m1" if n % 2 else "r1-m1"
    return {
        "id": f"probe-{n}",
        "kind": "threshold",
        "targets": {"assets": [machine]},
        "signal": "temperature",
        "above": 1,
    }


def acme_state(rt: Runtime, ignore: int | None = None) -> Any:
    return (
        [(a.id, a.name) for a in rt.asset_cache.assets("acme")],
        [(p.username, p.role) for p, _ in rt.metadata.users("acme")],
        [rt.events.record_count(k, "acme") for k in RecordKind],
        [
            (a.id, a.consumer, a.revoked_at)
            for a in rt.metadata.agreements("acme")
            if a.provider == "acme" and a.id != ignore
        ],
        [c.jti for c in rt.metadata.tokens("acme")],
        [c.name for c in rt.metadata.connections("acme")],
        [(a.id, a.state, a.activations) for a in rt.watch.book("acme").alarms()],
        [r["rule"]["id"] for r in rt.watch.rules("acme")],
    )


def test_no_operation_leaks_across_tenants(client: TestClient, runtime: Runtime) -> None:
    world = World(client, runtime)
    operations = [
        (method.upper(), path, op)
        for path, ops in client.get("/openapi.json").json()["paths"].items()
        for method, op in ops.items()
        if (method.upper(), path) not in SKIPPED and path.startswith("/api/v1")
    ]
    stats = {"operations": len(operations), "callers": len(world.callers), "attempts": 0, "leaks": 0}
    leaks: list[str] = []
    acme_before = acme_state(runtime)

    for phase in ("before", "during", "after"):
        if phase == "during":
            agreement = offer(client, world.acme_headers)["id"]
        if phase == "after":
            client.post(f"/api/v1/agreements/{agreement}/revoke", headers=world.acme_headers)
        forbidden_names = SECRET_NAMES + ([] if phase == "during" else SHARED_NAMES)
        forbidden_ids = SECRET_IDS + ([] if phase == "during" else SHARED_IDS)
        for method, path, op in operations:
            params = [p["name"] for p in op.get("parameters", []) if p["in"] == "path"]
            query_names = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
            queries = [q for q in QUERIES if set(q) <= query_names] or [{}]
            choices = [list(path_values(world, p, method)) for p in params]
            for caller, headers in world.callers.items():
                for combo in itertools.product(*choices) if choices else [()]:
                    ids = {p: value for p, (_, value) in zip(params, combo, strict=True)}
                    url = path.format(**ids)
                    answers: dict[str, tuple[int, str]] = {}
                    for query in queries:
                        body = body_for(world, method, path, ids)
                        response = client.request(method, url, params=query, json=body, headers=headers)
                        stats["attempts"] += 1
                        sent = url + json.dumps(query) + json.dumps(body)
                        text = response.text
                        for canary in forbidden_names + [i for i in forbidden_ids if i not in sent]:
                            if canary in text:
                                leaks.append(
                                    f"{phase} {caller} {method} {url} {query}: {canary!r} in {text[:300]}"
                                )
                        if query == queries[0]:
                            variants = [v for v, _ in combo]
                            answers["|".join(variants)] = (
                                response.status_code,
                                _without(text, [v for _, v in combo]),
                            )
                    _compare_foreign_and_missing(answers, f"{phase} {caller} {method} {path}", leaks)
    stats["leaks"] = len(leaks)
    assert acme_state(runtime, ignore=agreement) == acme_before, "a probe changed the provider's data"
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "security-matrix.json").write_text(json.dumps({**stats, "examples": leaks[:20]}, indent=2))
    assert leaks == []
    assert stats["attempts"] > 2000


def _without(text: str, values: list[str]) -> str:
    for value in values:
        text = text.replace(value, "ID")
    return text


def _compare_foreign_and_missing(answers: dict[str, tuple[int, str]], where: str, leaks: list[str]) -> None:
    """A foreign id must get exactly the answer a missing one gets."""
    for key, answer in answers.items():
        if "foreign" in key.split("|") or "neighbour" in key.split("|"):
            missing_key = key.replace("foreign", "missing").replace("neighbour", "missing")
            if missing_key in answers and answers[missing_key] != answer:
                leaks.append(f"{where}: {key} answered {answer} but missing {answers[missing_key]}")
