"""The docs stay true: every setting and every CLI command and option is documented."""

from __future__ import annotations

from pathlib import Path

import typer.main

from leitstand.api.settings import Settings
from leitstand.cli import app

DOCS = Path(__file__).parent.parent / "docs"


def test_every_setting_is_documented_with_its_environment_variable() -> None:
    text = (DOCS / "configuration.md").read_text()
    for name in Settings.model_fields:
        assert f"`{name}`" in text, name
        assert f"`LEITSTAND_{name.upper()}`" in text, name


def test_every_cli_command_and_option_is_documented() -> None:
    text = (DOCS / "cli.md").read_text()
    group = typer.main.get_command(app)
    commands = group.commands  # type: ignore[attr-defined]
    assert set(commands) == {
        "demo",
        "serve",
        "simulate",
        "import-assets",
        "create-user",
        "rotate-keys",
        "mqtt-acl",
    }
    for name, command in commands.items():
        assert f"`leitstand {name}" in text, name
        for param in command.params:
            if param.param_type_name == "option":
                assert any(f"`{flag}" in text for flag in param.opts), f"{name} {param.opts}"


def test_the_readme_names_exactly_the_two_setup_commands() -> None:
    readme = (DOCS.parent / "README.md").read_text()
    assert "make demo" in readme
    assert "make test" in readme
