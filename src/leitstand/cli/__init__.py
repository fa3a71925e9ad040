"""The `leitstand` command: one module per command group."""

from __future__ import annotations

import typer

from leitstand.cli import accounts, demo, import_assets, serve, simulate

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


def main() -> None:
    app()
