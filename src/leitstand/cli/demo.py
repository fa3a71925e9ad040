"""`leitstand demo`: the embedded default with a simulated enterprise, a week of history, live data."""

from __future__ import annotations

import json
import secrets
import shutil
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from leitstand.api.runtime import Runtime
from leitstand.cli.common import console, run_server, settings_from
from leitstand.domain.assets import parse_asset_model
from leitstand.domain.tenancy import Role
from leitstand.sim.enterprise import enterprise_model
from leitstand.sim.feed import Simulator

TENANT = "nordwerk"
TENANT_NAME = "Nordwerk Automotive"


@dataclass(frozen=True, slots=True)
class DemoAccess:
    """How to reach a demo: the URL, a user's credentials and an API token."""

    url: str
    tenant: str
    username: str
    password: str
    token: str


def seed_demo(
    rt: Runtime,
    plants: int,
    history: timedelta,
    end: datetime,
    seed: int = 7,
    progress: Progress | None = None,
) -> tuple[Simulator, DemoAccess]:
    """Create the demo tenant, its users and asset model, and backfill `history` up to `end`."""
    rt.identity.create_tenant(TENANT, TENANT_NAME)
    password = secrets.token_urlsafe(12)
    admin = rt.identity.create_user(TENANT, "admin", password, Role.TENANT_ADMIN)
    token, _ = rt.identity.issue_api_token(admin, "demo", timedelta(days=30))
    doc = enterprise_model(plants=plants, seed=seed)
    rt.metadata.import_asset_model(TENANT, parse_asset_model(doc))
    simulator = Simulator(doc, seed=seed)
    task = progress.add_task("backfilling history", total=1.0) if progress else None

    def advance(fraction: float) -> None:
        if progress is not None and task is not None:
            progress.update(task, completed=fraction)

    simulator.backfill(rt.pipeline, TENANT, end - history, end, progress=advance)
    url = f"http://{rt.settings.host}:{rt.settings.port}"
    return simulator, DemoAccess(url, TENANT, "admin", password, token)


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
        simulator, access = seed_demo(rt, plants, history, live_start, seed=seed, progress=progress)
    credentials = data_dir / "credentials.json"
    credentials.write_text(json.dumps(asdict(access), indent=2))
    stop = threading.Event()
    live = threading.Thread(
        target=simulator.run_live,
        args=(rt.pipeline, TENANT, live_start, stop),
        kwargs={"speed": speed},
        name="leitstand-sim-live",
        daemon=True,
    )

    def announce() -> None:
        live.start()
        console.print(
            f"\n[bold green]Leitstand demo ready[/bold green] in {time.perf_counter() - started:.0f} s\n"
            f"  open      [bold]{access.url}[/bold]\n"
            f"  log in    [bold]{access.username}[/bold] / [bold]{access.password}[/bold]\n"
            f"  API token {access.token}\n"
            f"  written to {credentials}\n  Ctrl-C stops it."
        )

    try:
        run_server(rt, on_started=announce, stop_after_s=duration)
    finally:
        stop.set()
        if live.is_alive():
            live.join(timeout=10)
        rt.stop()
