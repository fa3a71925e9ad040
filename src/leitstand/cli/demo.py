"""`leitstand demo`: the embedded default with a simulated enterprise, a week of history, live data."""

from __future__ import annotations

import json
import secrets
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from leitstand.api.runtime import Runtime
from leitstand.cli.common import console, run_server, settings_from
from leitstand.domain.agreements import Agreement, DataKind
from leitstand.domain.assets import parse_asset_model
from leitstand.domain.tenancy import Role
from leitstand.sim.enterprise import KESSLER, NORDWERK, OSTWALD, Company, enterprise_model
from leitstand.sim.feed import Simulator

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
    """One simulated company and the tenant its data goes to."""

    tenant: str
    simulator: Simulator


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
) -> tuple[list[DemoFeed], DemoAccess]:
    """Create the OEM tenant (and two supplier tenants sharing data under agreements), their users and
    asset models, and backfill `history` up to `end`. The OEM's feed comes first."""
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
        rt.metadata.import_asset_model(company.id, parse_asset_model(doc))
        feeds.append(DemoFeed(company.id, Simulator(doc, seed=seed)))
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

        feed.simulator.backfill(rt.pipeline, feed.tenant, end - history, end, progress=advance)
        done += weight / sum(weights)
    url = f"http://{rt.settings.host}:{rt.settings.port}"
    oem = accounts[0]
    return feeds, DemoAccess(url, oem.tenant, oem.username, oem.password, token, accounts[1:])


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
) -> None:
    """Run Leitstand on the embedded stores with a simulated enterprise, its history and live data."""
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
    settings = settings_from(
        None,
        data_dir=data_dir,
        host=host,
        port=port,
        max_past_s=(now - live_start + history).total_seconds() + 3600,
    )
    rt = Runtime.build(settings)
    rt.start()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        feeds, access = seed_demo(rt, plants, history, live_start, seed=seed, progress=progress)
    credentials = data_dir / "credentials.json"
    credentials.write_text(json.dumps(asdict(access), indent=2))
    stop = threading.Event()
    live = [
        threading.Thread(
            target=feed.simulator.run_live,
            args=(rt.pipeline, feed.tenant, live_start, stop),
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
        rt.stop()
