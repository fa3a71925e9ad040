"""The web UI in a real headless Chromium against a real server: login, live OEE figures, plant drill-down."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from playwright.sync_api import Browser, Page, expect, sync_playwright

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 30_000
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"  # screenshots for a human (gitignored)


def percent(ratio: float) -> str:
    """What the pages show for a ratio: JavaScript's `(ratio * 100).toFixed(1) + "%"` (ties round up)."""
    return f"{Decimal(ratio * 100).quantize(Decimal('0.1'), ROUND_HALF_UP)}%"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing; `make test` installs Debian's chromium via .ci/ensure-services")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=TIMEOUT_MS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, demo_server: Any) -> Iterator[Page]:
    """A fresh browser context (no cookies) on the demo server; a script error fails the test."""
    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context(base_url=demo_server.base_url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    script_errors: list[str] = []
    tab.on("pageerror", lambda error: script_errors.append(str(error)))
    yield tab
    context.close()
    assert not script_errors, f"uncaught script errors: {script_errors}"


def log_in(page: Page, username: str, password: str) -> None:
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def api(demo_server: Any, path: str, **params: str) -> Any:
    headers = {"authorization": f"Bearer {demo_server.token}"}
    response = httpx.get(f"{demo_server.base_url}{path}", params=params, headers=headers, timeout=30)
    response.raise_for_status()
    return response.json()


def oee_rows(
    demo_server: Any, window: dict[str, str], within: str | None = None
) -> dict[str, dict[str, Any]]:
    """The API's OEE rows for exactly the window the page shows (a rolling window moves with the clock)."""
    params = {"start": window["start"], "end": window["end"], **({"within": within} if within else {})}
    return {row["id"]: row for row in api(demo_server, "/api/v1/kpi/oee", **params)["rows"]}


# Read the figures and the window they belong to in one script turn, so no live update falls in between.
READ_ENTERPRISE = """() => {
  const live = document.getElementById("live").dataset;
  const plants = {};
  for (const card of document.querySelectorAll('[data-testid="plant-card"]')) {
    plants[card.dataset.siteId] = card.querySelector('[data-testid="plant-oee"]').textContent;
  }
  const enterprise = document.querySelector('[data-testid="enterprise-oee"]').textContent;
  return {window: {start: live.windowStart, end: live.windowEnd}, plants, enterprise};
}"""
READ_PLANT = """() => {
  const live = document.getElementById("live").dataset;
  const machines = {};
  for (const tile of document.querySelectorAll('[data-testid="machine-tile"]')) {
    machines[tile.dataset.assetId] = {
      state: tile.dataset.state, oee: tile.querySelector('[data-testid="machine-oee"]').textContent,
    };
  }
  const site = document.querySelector('[data-testid="site-oee"]').textContent;
  return {window: {start: live.windowStart, end: live.windowEnd}, machines, site};
}"""


def test_enterprise_and_plant_pages_show_the_apis_live_oee(page: Page, demo_server: Any) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    log_in(page, demo_server.username, demo_server.password)
    expect(page).to_have_url(f"{demo_server.base_url}/")

    live = page.get_by_test_id("live-indicator")
    expect(live).to_have_attribute("data-state", "live")
    expect(live).to_have_text(re.compile(r"live · updated \d\d:\d\d:\d\d"))
    shown = page.evaluate(READ_ENTERPRISE)
    rows = oee_rows(demo_server, shown["window"])
    sites = {id_: row for id_, row in rows.items() if row["level"] == "site"}
    assert len(shown["plants"]) >= 2
    assert set(shown["plants"]) == set(sites)
    # A plant without planned time in the window (a weekend off shift) has no OEE and shows "–".
    planned = {site_id for site_id, row in sites.items() if row["oee"] is not None}
    assert planned, (
        "no plant has planned time in the last 24 h; the demo data needs a calendar that covers now"
    )
    for site_id, text in shown["plants"].items():
        if site_id not in planned:
            assert text == "–"
            continue
        assert 0 < float(text.removesuffix("%")) <= 100, f"{site_id} shows {text}"
        assert text == percent(sites[site_id]["oee"])
    enterprise = next(row for row in rows.values() if row["level"] == "enterprise")
    assert shown["enterprise"] == percent(enterprise["oee"])
    page.screenshot(path=ARTIFACTS / "enterprise.png")

    site_id = sorted(planned)[0]
    page.locator(f'[data-testid="plant-card"][data-site-id="{site_id}"] h3 a').click()
    expect(page).to_have_url(f"{demo_server.base_url}/plants/{site_id}")
    expect(live).to_have_attribute("data-state", "live")
    tiles = page.get_by_test_id("machine-tile")
    snapshot = api(demo_server, "/api/v1/live/snapshot", within=site_id, hours="24")
    machine_ids = {row["id"] for row in snapshot["oee"] if row["level"] == "machine"}
    expect(tiles).to_have_count(len(machine_ids))
    expect(tiles.first.get_by_test_id("machine-state")).not_to_have_text("NO DATA")
    shown = page.evaluate(READ_PLANT)
    current = {s["asset_id"]: s["state"] for s in snapshot["states"]}
    shown_states = {m: shown["machines"][m]["state"] for m in machine_ids}
    assert shown_states == {m: current.get(m, "") for m in machine_ids}
    assert any(current.values())
    rows = oee_rows(demo_server, shown["window"], within=site_id)
    assert shown["site"] == percent(rows[site_id]["oee"])
    for machine_id in machine_ids:
        ratio = rows[machine_id]["oee"]
        assert shown["machines"][machine_id]["oee"] == (percent(ratio) if ratio is not None else "–")

    first = tiles.first
    first.get_by_text("Inputs").click()
    expect(first.get_by_role("rowheader", name="= PBT")).to_be_visible()

    # The stream rests live_interval_s after each snapshot and, as written, misses a commit in that rest.
    page.wait_for_timeout(1500)
    generated_before = live.get_attribute("data-generated-at")
    demo_server.ingest_more()
    expect(live).not_to_have_attribute("data-generated-at", generated_before or "")
    expect(live).to_have_attribute("data-state", "live")
    page.screenshot(path=ARTIFACTS / "plant.png")


def test_a_wrong_password_is_refused_with_a_message(page: Page, demo_server: Any) -> None:
    page.goto("/login")
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/login")) as answer:
        log_in(page, demo_server.username, "not the password at all")
    assert answer.value.status == 401
    expect(page.get_by_role("alert")).to_have_text("Unknown user name or wrong password.")
    expect(page.get_by_label("User name")).to_have_value(demo_server.username)
    assert "leitstand_session" not in {cookie["name"] for cookie in page.context.cookies()}
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "login-refused.png")


def test_an_unknown_plant_says_so_after_login_returns_to_it(page: Page, demo_server: Any) -> None:
    page.goto("/plants/no-such-plant")
    log_in(page, demo_server.username, demo_server.password)
    expect(page).to_have_url(f"{demo_server.base_url}/plants/no-such-plant")
    expect(page.get_by_role("alert")).to_contain_text("“no-such-plant” was not found")
    expect(page.get_by_test_id("machine-tile")).to_have_count(0)


def test_the_window_selector_resubscribes_the_stream(page: Page, demo_server: Any) -> None:
    page.goto("/login")
    log_in(page, demo_server.username, demo_server.password)
    live = page.get_by_test_id("live-indicator")
    expect(live).to_have_attribute("data-state", "live")
    page.get_by_text("8 h", exact=True).click()
    expect(page).to_have_url(re.compile(r"\?hours=8$"))
    expect(page.get_by_text("OEE over the last 8 h")).to_be_visible()
    page.wait_for_function(
        """() => {
          const d = document.getElementById("live").dataset;
          return d.windowStart && (new Date(d.windowEnd) - new Date(d.windowStart)) === 8 * 3600 * 1000;
        }"""
    )
    window = live.get_attribute("data-window-start"), live.get_attribute("data-window-end")
    assert all(window)
    start, end = (datetime.fromisoformat(t) for t in window if t)
    assert (end - start).total_seconds() == 8 * 3600


def test_a_supplier_sees_its_own_plant_and_only_what_is_shared_with_it(page: Page, demo_server: Any) -> None:
    page.goto("/login")
    log_in(page, "kessler", demo_server.suppliers["kessler"])
    expect(page.get_by_test_id("user")).to_contain_text("kessler")
    expect(page.get_by_test_id("plant-card")).to_have_count(1)
    expect(page.locator('[data-testid="plant-card"][data-site-id="k01"]')).to_be_visible()
    shared = page.get_by_test_id("shared-card")
    expect(shared).to_have_count(1)  # Ostwald shares with Kessler; Nordwerk shares nothing with it
    expect(shared).to_have_attribute("data-provider", "ostwald")
    expect(shared.get_by_test_id("shared-oee")).to_have_text(re.compile(r"^(\d+\.\d%|–)$"))
    expect(page.locator("body")).not_to_contain_text("Nordwerk")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "supplier.png", full_page=True)

    shared.locator("h3 a").click()
    expect(page).to_have_url(re.compile(r"/plants/o01\?provider=ostwald"))
    expect(page.get_by_test_id("shared-by")).to_contain_text("Shared by ostwald")
    expect(page.get_by_test_id("live-indicator")).to_have_attribute("data-state", "live")
    expect(page.get_by_test_id("machine-tile").first).to_be_visible()

    page.goto("/plants/p01")  # a Nordwerk plant: not Kessler's, not shared with it
    expect(page.get_by_role("alert")).to_contain_text("“p01” was not found")
    page.goto("/plants/p01?provider=nordwerk")
    expect(page.get_by_role("alert")).to_contain_text("“p01” was not found")


def test_the_enterprise_page_shows_productivity_against_its_baseline(page: Page, demo_server: Any) -> None:
    page.goto("/login")
    log_in(page, demo_server.username, demo_server.password)
    figure = page.get_by_test_id("productivity")
    expect(figure).to_be_visible()
    shown = float(figure.get_attribute("data-value") or "nan")
    answer = api(demo_server, "/api/v1/kpi/productivity", hours="168")
    enterprise = next(r for r in answer["rows"] if r["level"] == "enterprise")
    assert shown == pytest.approx(enterprise["units_per_machine_hour"], rel=0.02)  # the week moves on
    expect(figure).to_contain_text("good units per machine hour")
    expect(figure).to_contain_text("target +30 %")


def test_the_kpi_page_shows_waterfall_pareto_trend_and_comparison(page: Page, demo_server: Any) -> None:
    page.goto("/kpi")
    log_in(page, demo_server.username, demo_server.password)
    expect(page).to_have_url(f"{demo_server.base_url}/kpi")
    values = page.get_by_test_id("waterfall-value")
    expect(values).to_have_count(10)
    rows = {r["id"]: r for r in api(demo_server, "/api/v1/kpi/oee", hours="24")["rows"]}
    enterprise = next(r for r in rows.values() if r["level"] == "enterprise")
    shown = {
        v.get_attribute("data-key"): float(v.get_attribute("data-seconds") or "nan") for v in values.all()
    }
    # the window rolls on between the page's request and ours: within a minute of planned time
    assert shown["planned_busy_s"] == pytest.approx(enterprise["losses"]["planned_busy_s"], abs=60 * 20)
    assert shown["fully_productive_s"] <= shown["production_s"] <= shown["planned_busy_s"]
    pareto = api(demo_server, "/api/v1/kpi/downtime", hours="24", top="10")["rows"]
    expect(page.get_by_test_id("pareto-row")).to_have_count(len(pareto))
    sites = [r for r in rows.values() if r["level"] == "site"]
    expect(page.get_by_test_id("compare-row")).to_have_count(len(sites))
    trend = api(demo_server, "/api/v1/kpi/trend", hours="24", bucket="hour")
    expect(page.get_by_test_id("trend")).to_have_attribute("data-points", str(len(trend["buckets"])))
    expect(page.get_by_test_id("bottlenecks")).to_contain_text("Choose a plant")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "kpi.png", full_page=True)

    site = sites[0]["id"]
    page.get_by_test_id("scope").select_option(site)
    expect(page).to_have_url(re.compile(rf"within={site}"))
    areas = [
        r
        for r in api(demo_server, "/api/v1/kpi/oee", hours="24", within=site)["rows"]
        if r["level"] == "area"
    ]
    expect(page.get_by_test_id("compare-row")).to_have_count(len(areas))
    lines = api(demo_server, "/api/v1/kpi/bottlenecks", hours="24", within=site)["lines"]
    rows = page.get_by_test_id("bottleneck-row")
    expect(rows).to_have_count(len(lines))
    # the window rolls on between the page's request and ours: the bottleneck is one of the line's machines
    machines = "|".join(re.escape(m["id"]) for m in lines[0]["machines"])
    expect(rows.first).to_have_attribute("data-bottleneck", re.compile(rf"^({machines})$"))
    page.get_by_text("7 d", exact=True).click()
    expect(page.get_by_test_id("trend")).to_have_attribute("data-points", re.compile(r"^[78]$"))


def test_the_connections_page_shows_each_connections_health(page: Page, demo_server: Any) -> None:
    page.goto("/connections")
    log_in(page, demo_server.username, demo_server.password)
    expect(page).to_have_url(f"{demo_server.base_url}/connections")
    row = page.locator('[data-testid="connection"][data-name="plant-uns"]')
    expect(row.get_by_test_id("conn-state")).to_have_text("connected")
    expect(row.get_by_test_id("conn-last")).to_have_text("never")
    # a machine publishes into the Unified Namespace: good values and one that is not JSON
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="ui-test-machine")
    publisher.connect("127.0.0.1", 1883)
    publisher.loop_start()
    try:
        topic = "nordwerk/p01/p01-press/p01-press-l1/p01-press-l1-m01/samples/temperature"
        now = datetime.now(UTC)
        for i in range(30):
            info = publisher.publish(topic, f'{{"ts": "{now.isoformat()}", "value": {20 + i}}}'.encode(), 1)
            now -= timedelta(seconds=1)
        publisher.publish(topic, b"{broken", 1).wait_for_publish(10)
        info.wait_for_publish(10)
    finally:
        publisher.disconnect()
        publisher.loop_stop()
    expect(row.get_by_test_id("conn-messages")).to_have_text("31")
    expect(row.get_by_test_id("conn-faults")).to_have_text("invalid_json 1")
    expect(row.get_by_test_id("conn-last")).to_contain_text("ago")
    connection = api(demo_server, "/api/v1/connections/plant-uns")
    assert connection["health"]["records"] == 30
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "connections.png", full_page=True)


def test_the_alarm_console_shows_a_new_alarm_live_and_takes_an_acknowledgement(
    page: Page, demo_server: Any
) -> None:
    headers = {"authorization": f"Bearer {demo_server.token}"}
    machine = "p01-press-l1-m01"
    rule = {
        "id": "ui-press-hot",
        "name": "Press temperature very high",
        "kind": "threshold",
        "targets": {"assets": [machine]},
        "signal": "temperature",
        "above": 500,
        "priority": "urgent",
    }
    created = httpx.post(f"{demo_server.base_url}/api/v1/watch/rules", json=rule, headers=headers, timeout=10)
    assert created.status_code == 201, created.text
    page.goto("/alarms")
    log_in(page, demo_server.username, demo_server.password)
    expect(page).to_have_url(f"{demo_server.base_url}/alarms")
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    row = page.locator('[data-testid="alarm"][data-rule="ui-press-hot"]')
    expect(row).to_have_count(0)
    # the machine reports a temperature far above the limit: the console shows the alarm by itself
    ts = datetime.now(UTC) - timedelta(seconds=30)
    reading = [{"asset_id": machine, "signal": "temperature", "ts": ts.isoformat(), "value": 612.5}]
    stored = httpx.post(
        f"{demo_server.base_url}/api/v1/ingest/samples", json=reading, headers=headers, timeout=30
    )
    assert stored.json()["accepted"] == 1
    expect(row).to_have_count(1, timeout=15_000)
    expect(row.get_by_test_id("alarm-state")).to_have_text("unacknowledged")
    expect(row.get_by_test_id("alarm-message")).to_contain_text("612.5")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "alarms.png", full_page=True)
    row.get_by_test_id("ack").click()
    expect(row.get_by_test_id("alarm-state")).to_have_text("acknowledged")
    expect(row.get_by_test_id("ack")).to_have_count(0)
    alarm = api(demo_server, f"/api/v1/alarms/{row.get_attribute('data-id')}")
    assert [e["action"] for e in alarm["journal"]] == ["activated", "acknowledged"]
    assert alarm["journal"][1]["by"] == demo_server.username


def test_the_spc_page_draws_a_control_chart_with_limits_and_capability(page: Page, demo_server: Any) -> None:
    machine = "p01-press-l1-m01"
    page.goto(f"/spc?asset_id={machine}&signal=vibration&hours=8&chart=xbar_r&subgroup_size=5&lsl=0&usl=20")
    log_in(page, demo_server.username, demo_server.password)
    expect(page.get_by_test_id("spc-asset")).to_have_value(machine)
    expect(page.get_by_test_id("spc-signal")).to_have_value("vibration")
    location = page.get_by_test_id("spc-location")
    expect(location).to_have_attribute("data-points", re.compile(r"^[1-9]\d*$"))
    expect(page.get_by_test_id("spc-summary")).to_contain_text("rule violations")
    expect(page.get_by_test_id("spc-capability")).to_contain_text("Cpk")
    answer = api(
        demo_server,
        "/api/v1/watch/spc",
        asset_id=machine,
        signal="vibration",
        hours="8",
        chart="xbar_r",
        subgroup_size="5",
    )
    assert location.get_attribute("data-points") == str(len(answer["chart"]["location"]["points"]))
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "spc.png", full_page=True)
