"""`leitstand serve`: run the API and UI from a config file and the environment."""

from __future__ import annotations

from pathlib import Path

import typer

from leitstand.api.runtime import Runtime
from leitstand.cli.common import console, run_server, settings_from


def serve(
    config: Path | None = typer.Option(
        None, "--config", "-c", exists=True, dir_okay=False, help="YAML settings file."
    ),
    host: str | None = typer.Option(None, help="Bind address (overrides config and LEITSTAND_HOST)."),
    port: int | None = typer.Option(None, help="Port (overrides config and LEITSTAND_PORT)."),
    data_dir: Path | None = typer.Option(None, help="Data directory (overrides config)."),
) -> None:
    """Serve the HTTP API and web UI on the embedded stores."""
    settings = settings_from(config, host=host, port=port, data_dir=data_dir)
    rt = Runtime.build(settings)
    url = f"http://{settings.host}:{settings.port}"
    console.print(f"Leitstand serving on [bold]{url}[/bold], data in {settings.data_dir}")
    run_server(rt)
