"""`leitstand demo`: the embedded default with a simulated enterprise, a week of history, live data."""

from __future__ import annotations

import json
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from leitstand.api.runtime import Runtime
from leitstand.cli.common import console, run_server, settings_from
from leitstand.domain.agreements import Agreement, DataKind
from leitstand.domain.alarms import AlarmState
from leitstand.domain.assets import AssetModel, parse_asset_model
from leitstand.domain.errors import InputError
from leitstand.domain.records import RecordKind
from leitstand.domain.tenancy import Role
from leitstand.ingest.sink import RecordSink
from leitstand.sim.enterprise import KESSLER, NORDWERK, OSTWALD, Company, enterprise_model
from leitstand.sim.faults import FaultRates
from leitstand.sim.feed import Simulator
from leitstand.sim.mqtt_publisher import BrokerPublisher, UnsPublisher
from leitstand.sim.rules import demo_rules
from leitstand.sim.sparkplug_edge import SparkplugEdgePublisher, sparkplug_connection

TENANT = NORDWERK.id
SUPPLIER_PLANTS = 1


@dataclass(frozen=True, slots=True)
class DemoAccount:
    tenant: str
    username: str
    password: str


@dataclass(frozen=True, slots=True)
class DemoAccess:
    """How to reach a demo: the URL, the OEM admin's credentials and API token, and the suppliers'."""

    url: str
    tenant: str
    username: str
    password: str
    token: str
    suppliers: list[DemoAccount] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class DemoFeed:
    """One simulated company, the tenant its data goes to, and where the simulator sends it: the ingest
    pipeline, or (`--via mqtt`) the company's Unified Namespace on a broker."""

    tenant: str
    simulator: Simulator
    sink: RecordSink


# (provider, consumer, what, purpose, framework): the suppliers' agreements, each sharing the provider's
# first plant.
_AGREEMENTS = (
    (
        OSTWALD,
        KESSLER,
        "Output and machine states of the drive plant supplying Kessler",
        "cx.dcm.base:1",
        "DemandCapacity:1.0",
    ),
    (
        KESSLER,
        NORDWERK,
        "OEE and machine states of the stamping plant supplying Nordwerk",
        "cx.quality.base:1",
        "Quality:1.0",
    ),
)


def seed_demo(
    rt: Runtime,
    plants: int,
    history: timedelta,
    end: datetime,
    seed: int = 7,
    progress: Progress | None = None,
    suppliers: bool = True,
    sink_for: Callable[[AssetModel], RecordSink] | None = None,
) -> tuple[list[DemoFeed], DemoAccess]:
    """Create the OEM tenant (and two supplier tenants sharing data under agreements), their users and
    asset models, and backfill `history` up to `end`. The OEM's feed comes first. `sink_for(model)`
    gives where a company's records go (default: the ingest pipeline)."""
    companies = [
        (NORDWERK, plants),
        *(((KESSLER, SUPPLIER_PLANTS), (OSTWALD, SUPPLIER_PLANTS)) if suppliers else ()),
    ]
    feeds: list[DemoFeed] = []
    accounts: list[DemoAccount] = []
    token = ""
    for company, count in companies:
        rt.identity.create_tenant(company.id, company.name, _bpn(company))
        password = secrets.token_urlsafe(12)
        username = "admin" if company is NORDWERK else company.id
        admin = rt.identity.create_user(company.id, username, password, Role.TENANT_ADMIN)
        if company is NORDWERK:
            token, _ = rt.identity.issue_api_token(admin, "demo", timedelta(days=30))
        accounts.append(DemoAccount(company.id, username, password))
        doc = enterprise_model(plants=count, seed=seed, company=company)
        model = parse_asset_model(doc)
        rt.metadata.import_asset_model(company.id, model)
        sink = sink_for(model) if sink_for is not None else rt.pipeline
        faults = None
        if company is NORDWERK:  # the OEM's machines develop faults, and its engineers watch for them
            faults = FaultRates()
            for rule in demo_rules(company.id):
                rt.watch.add_rule(company.id, rule, "demo")
        feeds.append(DemoFeed(company.id, Simulator(doc, seed=seed, faults=faults), sink))
    if suppliers:
        now = datetime.now(UTC)
        for provider, consumer, name, purpose, framework in _AGREEMENTS:
            rt.metadata.create_agreement(
                Agreement(
                    id=0,
                    provider=provider.id,
                    consumer=consumer.id,
                    name=name,
                    scope=f"{provider.site_prefix}01",
                    kinds=frozenset(DataKind),
                    purpose=purpose,
                    framework=framework,
                    valid_from=end - history,
                    valid_until=now + timedelta(days=365),
                    created_at=now,
                    created_by=provider.id,
                )
            )
    task = progress.add_task("backfilling history", total=1.0) if progress else None
    weights = [count for _, count in companies]
    done = 0.0
    for feed, weight in zip(feeds, weights, strict=True):

        def advance(fraction: float, before: float = done, share: float = weight / sum(weights)) -> None:
            if progress is not None and task is not None:
                progress.update(task, completed=before + fraction * share)

        feed.simulator.backfill(feed.sink, feed.tenant, end - history, end, progress=advance)
        done += weight / sum(weights)
    rt.watch.drain(timeout=600)
    settle_history_alarms(rt, NORDWERK.id, end - timedelta(hours=2))
    url = f"http://{rt.settings.host}:{rt.settings.port}"
    oem = accounts[0]
    return feeds, DemoAccess(url, oem.tenant, oem.username, oem.password, token, accounts[1:])


def settle_history_alarms(rt: Runtime, tenant: str, before: datetime) -> int:
    """Acknowledge the alarms of simulated history that cleared before `before`, in the journal as the
    simulation's doing, so the console opens on what is current rather than on days of backlog."""
    book = rt.watch.book(tenant)
    old = [
        a
        for a in book.alarms([AlarmState.RETURNED_UNACKNOWLEDGED])
        if a.cleared_at is not None and a.cleared_at < before
    ]
    for alarm in old:
        book.acknowledge(alarm.id, "simulation", "cleared in simulated history before the demo began")
    return len(old)


def broker_connection(via: str, company: Company, plants: int, seed: int, broker: str) -> dict[str, object]:
    """The demo's connection for a company's simulated plants: its Unified Namespace (`--via mqtt`) or
    its Sparkplug B edge nodes (`--via sparkplug`)."""
    if via == "mqtt":
        return uns_connection(company.id, broker)
    count = plants if company is NORDWERK else SUPPLIER_PLANTS
    doc = enterprise_model(plants=count, seed=seed, company=company)
    return sparkplug_connection(company.id, [site["id"] for site in doc["sites"]], broker)


def uns_connection(tenant: str, broker: str) -> dict[str, object]:
    """The demo's subscription to a company's Unified Namespace (`--via mqtt`)."""
    host, _, port = broker.rpartition(":")
    return {
        "protocol": "mqtt",
        "name": "demo-uns",
        "tenant": tenant,
        "description": "The simulated plants' Unified Namespace",
        "broker": {"host": host, "port": int(port), "client_id": f"leitstand-demo-{tenant}"},
    }


def wait_until_stored(
    rt: Runtime,
    publishers: list[BrokerPublisher],
    progress: Progress,
    timeout_s: float = 900,
) -> None:
    """Wait until the records published into the broker are stored (the connections lag the broker)."""
    published: dict[tuple[str, RecordKind], int] = {}
    for p in publishers:
        for key, n in p.published.items():
            published[key] = published.get(key, 0) + n
    task = progress.add_task("storing what went through the broker", total=sum(published.values()))
    deadline = time.monotonic() + timeout_s
    while True:
        stored = sum(min(n, rt.events.record_count(kind, tenant)) for (tenant, kind), n in published.items())
        progress.update(task, completed=stored)
        if stored >= sum(published.values()):
            return
        if time.monotonic() > deadline:
            raise InputError(f"only {stored} of {sum(published.values())} records arrived through the broker")
        time.sleep(0.5)


def _bpn(company: Company) -> str:
    """A made-up Catena-X business partner number, stable per company."""
    return f"BPNL{company.id.upper()[:8]:0>8}0000"[:16]


MARKER = ".leitstand-demo"


def reset_demo_dir(data_dir: Path) -> None:
    """Empty a demo's data dir for a fresh start; refuse a non-empty folder the demo did not create."""
    if data_dir.exists() and any(data_dir.iterdir()):
        if not (data_dir / MARKER).exists():
            raise typer.BadParameter(
                f"{data_dir} is not empty and was not made by `leitstand demo`; choose another --data-dir",
                param_hint="--data-dir",
            )
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / MARKER).write_text(
        "made by `leitstand demo`; the demo empties this folder at its next start\n"
    )


def demo(
    data_dir: Path = typer.Option(
        Path("leitstand-data/demo"), help="Where the demo keeps its data (reset at start)."
    ),
    host: str = typer.Option("127.0.0.1", help="Bind address."),
    port: int = typer.Option(8080, help="Port."),
    plants: int = typer.Option(6, min=1, max=122, help="Number of simulated plants."),
    history_days: float = typer.Option(7.0, min=0.0, max=30.0, help="Days of history to backfill."),
    speed: float = typer.Option(
        1.0, min=1.0, max=3600.0, help="Live simulation speed (needs --duration when > 1)."
    ),
    duration: float | None = typer.Option(
        None, min=1.0, help="Stop after this many seconds (default: run until Ctrl-C)."
    ),
    seed: int = typer.Option(7, help="Simulator seed."),
    via: str = typer.Option(
        "direct",
        help="How the simulated machines deliver: 'direct' into ingest; 'mqtt': they publish into a "
        "Unified Namespace on --broker; 'sparkplug': they are Sparkplug B edge nodes on --broker. "
        "Leitstand subscribes (history and live data).",
    ),
    broker: str = typer.Option(
        "127.0.0.1:1883", help="host:port of the MQTT broker for --via mqtt/sparkplug."
    ),
) -> None:
    """Run Leitstand on the embedded stores with a simulated enterprise, its history and live data."""
    if via not in ("direct", "mqtt", "sparkplug"):
        raise typer.BadParameter("--via is 'direct', 'mqtt' or 'sparkplug'", param_hint="--via")
    mqtt_host, _, port_text = broker.rpartition(":")
    if via != "direct" and (not mqtt_host or not port_text.isdigit()):
        raise typer.BadParameter("--broker is host:port, e.g. 127.0.0.1:1883", param_hint="--broker")
    if speed > 1 and duration is None:
        raise typer.BadParameter(
            "--speed above 1 needs --duration: the simulated clock may not pass the real one"
        )
    started = time.perf_counter()
    reset_demo_dir(data_dir)
    # History is backfilled up to the point from which the live phase, at `speed`, catches up with now.
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    live_start = now - timedelta(seconds=(speed - 1) * (duration or 0))
    history = timedelta(days=history_days)
    companies = [NORDWERK, KESSLER, OSTWALD]
    settings = settings_from(
        None,
        data_dir=data_dir,
        host=host,
        port=port,
        max_past_s=(now - live_start + history).total_seconds() + 3600,
        connections=[broker_connection(via, c, plants, seed, broker) for c in companies]
        if via != "direct"
        else [],
    )
    rt = Runtime.build(settings)
    rt.start()
    publishers: list[BrokerPublisher] = []

    def publisher(model: AssetModel) -> RecordSink:
        if via == "mqtt":
            publishers.append(UnsPublisher({a.id: a.path for a in model.assets}, mqtt_host, int(port_text)))
        else:
            publishers.append(SparkplugEdgePublisher(list(model.assets), mqtt_host, int(port_text)))
        return publishers[-1]

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        feeds, access = seed_demo(
            rt,
            plants,
            history,
            live_start,
            seed=seed,
            progress=progress,
            sink_for=publisher if via != "direct" else None,
        )
        if via != "direct":
            wait_until_stored(rt, publishers, progress)
    credentials = data_dir / "credentials.json"
    credentials.write_text(json.dumps(asdict(access), indent=2))
    stop = threading.Event()
    live = [
        threading.Thread(
            target=feed.simulator.run_live,
            args=(feed.sink, feed.tenant, live_start, stop),
            kwargs={"speed": speed},
            name=f"leitstand-sim-{feed.tenant}",
            daemon=True,
        )
        for feed in feeds
    ]

    def announce() -> None:
        for thread in live:
            thread.start()
        suppliers = "".join(
            f"  supplier  [bold]{a.username}[/bold] / [bold]{a.password}[/bold] ({a.tenant})\n"
            for a in access.suppliers
        )
        console.print(
            f"\n[bold green]Leitstand demo ready[/bold green] in {time.perf_counter() - started:.0f} s\n"
            f"  open      [bold]{access.url}[/bold]\n"
            f"  log in    [bold]{access.username}[/bold] / [bold]{access.password}[/bold] ({access.tenant})\n"
            f"{suppliers}"
            f"  API token {access.token}\n"
            f"  written to {credentials}\n  Ctrl-C stops it."
        )

    try:
        run_server(rt, on_started=announce, stop_after_s=duration)
    finally:
        stop.set()
        for thread in live:
            if thread.is_alive():
                thread.join(timeout=10)
        for p in publishers:
            p.close()
        rt.stop()
