"""The `leitstand` command: one module per command group."""

from __future__ import annotations

import typer

from leitstand.cli import accounts, demo, import_assets, mqtt_acl, serve, simulate

app = typer.Typer(
    name="leitstand",
    help="Leitstand: an open industrial cloud for connected plants and their supply chain.",
    no_args_is_help=True,
    add_completion=False,
)
app.command("demo")(demo.demo)
app.command("serve")(serve.serve)
app.command("simulate")(simulate.simulate)
app.command("import-assets")(import_assets.import_assets)
app.command("create-user")(accounts.create_user)
app.command("rotate-keys")(accounts.rotate_keys)
app.command("mqtt-acl")(mqtt_acl.mqtt_acl)


def main() -> None:
    app()
