"""`leitstand simulate`: feed a running server with a simulated enterprise through its HTTP API."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import httpx
import typer

from leitstand.cli.common import console
from leitstand.sim.enterprise import enterprise_model
from leitstand.sim.feed import Simulator
from leitstand.sim.http_sink import HttpSink


def simulate(
    url: str = typer.Option("http://127.0.0.1:8080", help="Base URL of a running Leitstand."),
    token: str = typer.Option(..., envvar="LEITSTAND_TOKEN", help="API token of an engineer or admin."),
    plants: int = typer.Option(6, min=1, max=122),
    history_hours: float = typer.Option(0.0, min=0.0, help="Hours of history to backfill first."),
    speed: float = typer.Option(1.0, min=1.0, max=3600.0),
    duration: float | None = typer.Option(None, min=1.0, help="Stop after this many seconds."),
    seed: int = typer.Option(7),
    import_model: bool = typer.Option(True, help="Import the simulated asset model first."),
) -> None:
    """Import the simulated enterprise into the token's tenant and stream its data over HTTP."""
    if speed > 1 and duration is None:
        raise typer.BadParameter("--speed above 1 needs --duration")
    doc = enterprise_model(plants=plants, seed=seed)
    headers = {"authorization": f"Bearer {token}"}
    tenant = (
        httpx.get(f"{url}/api/v1/auth/me", headers=headers, timeout=30).raise_for_status().json()["tenant"]
    )
    if import_model:
        response = httpx.post(
            f"{url}/api/v1/assets",
            json=doc,
            headers=headers,
            timeout=120,
        )
        response.raise_for_status()
        console.print(f"asset model imported: {response.json()}")
    simulator = Simulator(doc, seed=seed)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    live_start = now - timedelta(seconds=(speed - 1) * (duration or 0))
    stop = threading.Event()
    with HttpSink(url, token) as sink:
        if history_hours:
            simulator.backfill(sink, tenant, live_start - timedelta(hours=history_hours), live_start)
        timer = threading.Timer(duration, stop.set) if duration else None
        if timer is not None:
            timer.start()
        console.print(f"streaming {plants} plants to {url} (tenant {tenant}); Ctrl-C stops")
        try:
            simulator.run_live(sink, tenant, live_start, stop, speed=speed)
        except KeyboardInterrupt:
            stop.set()
        finally:
            if timer is not None:
                timer.cancel()
