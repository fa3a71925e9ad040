"""`leitstand import-assets`: load an asset model (YAML or JSON) into a tenant."""

from __future__ import annotations

from pathlib import Path

import httpx
import typer

from leitstand.api.documents import load_document
from leitstand.cli.common import cli_audit, console, metadata_store
from leitstand.domain.assets import parse_asset_model


def import_assets(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="Asset model, YAML or JSON."),
    tenant: str | None = typer.Option(None, help="Tenant to import into (direct mode)."),
    url: str | None = typer.Option(None, help="Import through a running server's API instead."),
    token: str | None = typer.Option(None, envvar="LEITSTAND_TOKEN", help="API token for --url."),
    config: Path | None = typer.Option(None, "--config", "-c", exists=True, dir_okay=False),
    data_dir: Path | None = typer.Option(None),
) -> None:
    """Import (upsert) an asset model: directly into the metadata store, or via --url and --token."""
    text = file.read_text()
    if url:
        if not token:
            raise typer.BadParameter("--url needs --token (or LEITSTAND_TOKEN)")
        media = "application/json" if file.suffix == ".json" else "application/yaml"
        response = httpx.post(
            f"{url.rstrip('/')}/api/v1/assets",
            content=text.encode(),
            headers={"authorization": f"Bearer {token}", "content-type": media},
            timeout=60,
        )
        if response.status_code >= 400:
            console.print(
                f"[red]error {response.status_code}:[/red] {response.json().get('detail', response.text)}"
            )
            raise SystemExit(1)
        console.print(response.json())
        return
    if not tenant:
        raise typer.BadParameter("give --tenant (direct import) or --url and --token")
    with metadata_store(config, data_dir) as (_, metadata):
        model = parse_asset_model(load_document(text, "yaml"))  # YAML is a superset of JSON
        cli_audit(metadata, "assets_imported", tenant, "asset-model", file=file.name)
        console.print(metadata.import_asset_model(tenant, model))
