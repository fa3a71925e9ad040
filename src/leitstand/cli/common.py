"""What several commands share: settings from options, logging, and running the HTTP server."""

from __future__ import annotations

import getpass
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from rich.console import Console

from leitstand.access.audit import AuditLog
from leitstand.api.app import create_app
from leitstand.api.runtime import Runtime
from leitstand.api.settings import Settings, load_settings
from leitstand.domain.errors import LeitstandError
from leitstand.domain.tenancy import PLATFORM_TENANT, Principal, Role
from leitstand.store.sql import SqlMetadataStore

console = Console(stderr=True)


def settings_from(config: Path | None, **overrides: object) -> Settings:
    try:
        settings = load_settings(config, **overrides)
    except LeitstandError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(2) from exc
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))
    return settings


def cli_audit(metadata: SqlMetadataStore, action: str, tenant: str, target: str, **detail: object) -> None:
    """Audit a change a command makes to the store directly; the actor is the operator's login on the
    host (`cli:<user>`), in the platform tenant."""
    actor = Principal(PLATFORM_TENANT, 0, f"cli:{getpass.getuser()}", Role.PLATFORM_ADMIN)
    AuditLog(metadata).record(actor, action, tenant, target, **detail)


@contextmanager
def metadata_store(config: Path | None, data_dir: Path | None) -> Iterator[tuple[Settings, SqlMetadataStore]]:
    """The settings and the metadata store for a command that works on the store directly; a
    LeitstandError inside ends the command with its message and exit code 2."""
    settings = settings_from(config, data_dir=data_dir)
    metadata = SqlMetadataStore(settings.metadata_database_url)
    try:
        yield settings, metadata
    except LeitstandError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(2) from exc
    finally:
        metadata.close()


def run_server(
    rt: Runtime, on_started: Callable[[], None] | None = None, stop_after_s: float | None = None
) -> None:
    """Serve the app on the runtime's host and port until interrupted (or for `stop_after_s`)."""
    config = uvicorn.Config(
        create_app(rt), host=rt.settings.host, port=rt.settings.port, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    if on_started is not None or stop_after_s is not None:

        def watch() -> None:
            while not server.started:
                if server.should_exit:
                    return
                threading.Event().wait(0.05)
            if on_started is not None:
                on_started()
            if stop_after_s is not None:
                threading.Event().wait(stop_after_s)
                server.should_exit = True

        threading.Thread(target=watch, name="leitstand-server-watch", daemon=True).start()
    server.run()
