"""`leitstand create-user`: create a tenant (if new) and a user in it."""

from __future__ import annotations

from pathlib import Path

import typer

from leitstand.access.identity import IdentityService
from leitstand.cli.common import console, settings_from
from leitstand.domain.errors import LeitstandError
from leitstand.domain.tenancy import Role
from leitstand.store.sql import SqlMetadataStore


def create_user(
    username: str = typer.Argument(..., help="Login name, unique across tenants."),
    tenant: str = typer.Option(..., help="Tenant id; created when it does not exist."),
    tenant_name: str | None = typer.Option(None, help="Display name of a new tenant."),
    role: Role = typer.Option(Role.VIEWER, help="Role in the tenant."),
    password: str = typer.Option(
        ..., prompt=True, hide_input=True, confirmation_prompt=True, envvar="LEITSTAND_NEW_PASSWORD"
    ),
    config: Path | None = typer.Option(None, "--config", "-c", exists=True, dir_okay=False),
    data_dir: Path | None = typer.Option(None),
) -> None:
    """Create a user (and its tenant if new) in the metadata store."""
    settings = settings_from(config, data_dir=data_dir)
    metadata = SqlMetadataStore(settings.metadata_database_url)
    identity = IdentityService(metadata)
    try:
        if metadata.tenant(tenant) is None:
            identity.create_tenant(tenant, tenant_name or tenant)
        identity.create_user(tenant, username, password, role)
    except LeitstandError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(2) from exc
    finally:
        metadata.close()
    console.print(f"created user [bold]{username}[/bold] ({role.value}) in tenant {tenant}")
