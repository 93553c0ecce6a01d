"""Test helpers: sandbox workspaces wired into a tokenbot configuration, as an admin would write it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.config import Settings, load_settings
from bot.sandbox.databricks import DatabricksSandbox


@dataclass
class Org:
    """Running sandbox workspaces plus the settings and environment that point tokenbot at them."""

    sandboxes: dict[str, DatabricksSandbox]
    environ: dict[str, str]
    config_path: Path

    def settings(self) -> Settings:
        return load_settings()  # the monkeypatched process environment

    def __getitem__(self, name: str) -> DatabricksSandbox:
        return self.sandboxes[name]


@contextmanager
def sandbox_org(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    names: tuple[str, ...] = ("prod", "dev"),
    extra_toml: str = "",
    retry_timeout_seconds: int = 3,
) -> Iterator[Org]:
    with ExitStack() as stack:
        sandboxes = {}
        lines = []
        for index, name in enumerate(names):
            sandbox = stack.enter_context(DatabricksSandbox(workspace_id=1000 + index))
            sandboxes[name] = sandbox
            variable = f"{name.upper()}_DATABRICKS_TOKEN"
            monkeypatch.setenv(variable, sandbox.admin_token)
            lines.append(
                f'[[workspaces]]\nname = "{name}"\nhost = "{sandbox.url}"\ntoken_env = "{variable}"\n'
            )
        lines.append(
            f"[databricks]\nretry_timeout_seconds = {retry_timeout_seconds}\nhttp_timeout_seconds = 2\n"
        )
        config = tmp_path / "tokenbot.toml"
        config.write_text("\n".join(lines) + "\n" + extra_toml)
        environ = {"TOKENBOT_CONFIG": str(config), "TOKENBOT_DATABASE_URL": database_url}
        for key, value in environ.items():
            monkeypatch.setenv(key, value)
        yield Org(sandboxes, environ, config)
