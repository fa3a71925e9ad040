"""`leitstand create-user` (a tenant, if new, and a user in it) and `leitstand rotate-keys`."""

from __future__ import annotations

from pathlib import Path

import typer

from leitstand.access.audit import AuditLog
from leitstand.access.identity import IdentityService
from leitstand.access.tokens import KeyRing
from leitstand.cli.common import cli_audit, console, metadata_store
from leitstand.domain.tenancy import PLATFORM_TENANT, Role


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
    with metadata_store(config, data_dir) as (settings, metadata):
        identity = IdentityService(metadata, KeyRing(metadata, settings.token_issuer), AuditLog(metadata))
        if metadata.tenant(tenant) is None:
            cli_audit(metadata, "tenant_created", tenant, f"tenant:{tenant}")
            identity.create_tenant(tenant, tenant_name or tenant)
        cli_audit(metadata, "user_created", tenant, f"user:{username}", role=role.value)
        identity.create_user(tenant, username, password, role)
    console.print(f"created user [bold]{username}[/bold] ({role.value}) in tenant {tenant}")


def rotate_keys(
    retire_others: bool = typer.Option(
        False, help="Also retire all older keys now: every token they signed stops working."
    ),
    config: Path | None = typer.Option(None, "--config", "-c", exists=True, dir_okay=False),
    data_dir: Path | None = typer.Option(None),
) -> None:
    """Make a new token signing key; older keys verify until retired."""
    with metadata_store(config, data_dir) as (settings, metadata):
        kid, retired = KeyRing(metadata, settings.token_issuer).rotate(retire_others)
        cli_audit(metadata, "keys_rotated", PLATFORM_TENANT, f"key:{kid}", retired=retired)
    console.print(f"new signing key {kid}; retired: {', '.join(retired) or 'none'}")
