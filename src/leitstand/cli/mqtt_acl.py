"""`leitstand mqtt-acl`: write Mosquitto's password and ACL files from the tenants' gateways."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer

from leitstand.access.mosquitto import (
    gateway_account,
    mosquitto_password_hash,
    platform_account,
    write_mosquitto_files,
)
from leitstand.cli.common import console, metadata_store


def mqtt_acl(
    out: Path = typer.Option(..., "--out", file_okay=False, help="Folder for the `passwd` and `acl` files."),
    platform_user: str = typer.Option("leitstand-ingest", help="MQTT user name of Leitstand's own client."),
    platform_password: str = typer.Option(
        ..., prompt=True, hide_input=True, envvar="LEITSTAND_MQTT_PASSWORD", help="Its password."
    ),
    config: Path | None = typer.Option(None, "--config", "-c", exists=True, dir_okay=False),
    data_dir: Path | None = typer.Option(None),
) -> None:
    """Write the broker's files: each gateway may publish under its own site's topics only."""
    with metadata_store(config, data_dir) as (_, metadata):
        accounts = [platform_account(platform_user, mosquitto_password_hash(platform_password))]
        for gateway, password_hash in metadata.mqtt_gateways(datetime.now(UTC)):
            name = gateway.username.split("/", 1)[1]
            accounts.append(gateway_account(gateway.tenant_id, name, gateway.site or "", password_hash))
        out.mkdir(parents=True, exist_ok=True)
        passwd, acl = write_mosquitto_files(out, accounts)
    console.print(f"wrote {passwd} and {acl} for {len(accounts) - 1} gateways; reload Mosquitto (SIGHUP)")
