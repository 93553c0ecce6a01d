"""The README stays true: every command and option, every environment variable, every TOML key
and every `/tokens` subcommand the code has is documented, and nothing documented is missing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.main import get_command

from bot.cli.main import app
from bot.config import (
    DatabricksConfig,
    MisuseConfig,
    PolicyConfig,
    SecretBinding,
    Settings,
    SlackConfig,
    WorkspaceConfig,
)
from bot.slack.ids import Subcommand

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(title)
    following = README.find("\n## ", start + len(title))
    return README[start:] if following == -1 else README[start:following]


def commands(group=None, prefix=""):
    group = group or get_command(app)
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}".strip()
        if hasattr(command, "commands"):
            yield from commands(command, path)
        else:
            options = [p.opts[0] for p in command.params
                       if getattr(p, "opts", None) and p.opts[0].startswith("--") and not p.hidden
                       and p.opts[0] != "--help"]
            yield path, options


@pytest.mark.parametrize(("path", "options"), list(commands()))
def test_every_command_and_option_is_in_the_commands_table(path, options):
    table = section("## Commands")
    rows = [line for line in table.splitlines() if line.startswith(f"| `tokenbot {path}")]
    assert rows, f"`tokenbot {path}` is not in the README's commands table"
    for option in options:
        assert option in rows[0], f"{option} of `tokenbot {path}` is not documented"


def test_every_documented_command_exists():
    documented = set(re.findall(r"^\| `tokenbot ([a-z]+(?: [a-z]+)?)", section("## Commands"), re.M))
    documented.discard("--version")
    assert documented <= {path for path, _ in commands()} | {"--version"}


def test_every_environment_variable_is_documented_and_nothing_else():
    table = section("### Environment")
    documented = set(re.findall(r"^\| `([A-Z_*]+)`", table, re.M))
    aliases = {f.validation_alias for f in Settings.model_fields.values() if isinstance(f.validation_alias, str)}
    assert aliases | {"DATABRICKS_*"} == documented


@pytest.mark.parametrize(
    "model", [WorkspaceConfig, PolicyConfig, MisuseConfig, SlackConfig, DatabricksConfig, SecretBinding]
)
def test_every_toml_key_is_in_the_reference(model):
    reference = section("### TOML file")
    for key in model.model_fields:
        # a key, or a table of its own such as [policy.misuse]
        found = re.search(rf"^#?\s*{key} = |^\[policy\.{key}\]", reference, re.M)
        assert found, f"{model.__name__}.{key} is not in the README"


def test_every_slash_subcommand_is_documented():
    table = section("### `/tokens` in Slack")
    documented = set(re.findall(r"^\| `([a-z]+)", table, re.M))
    assert documented == {str(s) for s in Subcommand}


def test_the_quick_start_is_the_two_make_commands():
    quick = section("## Quick start")
    assert "make demo" in quick and "make test" in quick
