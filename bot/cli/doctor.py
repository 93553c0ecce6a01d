"""`tokenbot doctor`: check the configuration, the database, Slack (auth, scopes against
manifest.yml, channels) and each Databricks workspace (reachable, credentials accepted, token
management allowed, SCIM readable), and say what to fix.

Each check is a `Check(name, ok, detail)`: ok True, False (the detail says what to fix) or None
(a note). The live calls are read-only and bounded: doctor waits seconds for a broken host, not the
minutes of retries the bot itself allows.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import typer
import yaml
from rich.markup import escape
from rich.table import Table
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from bot import db
from bot.cli.shared import EXIT_USAGE, first_line, out, safe_url
from bot.config import ConfigError, Settings, load_settings
from bot.logs import setup_logging

MANIFEST = Path(__file__).resolve().parents[2] / "manifest.yml"  # the repository's root
DOCTOR_RETRY_SECONDS = 10
DOCTOR_HTTP_SECONDS = 10


class Check(NamedTuple):
    name: str
    ok: bool | None  # None: a note, not a problem
    detail: str


def doctor(
    offline: bool = typer.Option(
        False, "--offline", help="Check configuration and database only; call neither Slack nor Databricks."
    ),
) -> None:
    """Check configuration, the database, Slack (auth, scopes, channels) and every workspace
    (reachable, token management, SCIM); say what to fix. Exit 2 when something must be fixed."""
    try:
        settings = load_settings()
    except ConfigError as error:
        checks = [Check("configuration", False, problem) for problem in error.problems]
    else:
        setup_logging(settings.log_level, settings.log_format, settings.secrets())
        checks = _configuration_checks(settings) + _database_checks(
            db.make_engine(settings.database_url), settings
        )
        if not offline:
            checks += live_checks(settings)
    _print_checks(checks)
    if any(check.ok is False for check in checks):
        raise typer.Exit(EXIT_USAGE)


def _configuration_checks(settings: Settings) -> list[Check]:
    source = str(settings.config_path) if settings.config_path else "environment only (no tokenbot.toml)"
    checks = [Check("configuration", True, f"loaded from {source}")]
    if settings.workspaces:
        names = ", ".join(w.name for w in settings.workspaces)
        checks.append(Check("workspaces", True, f"{len(settings.workspaces)} configured: {names}"))
    else:
        checks.append(
            Check(
                "workspaces",
                False,
                "none configured: add [[workspaces]] to the TOML file or set DATABRICKS_HOST",
            )
        )
    checks.append(
        Check("slack bot token", True, "SLACK_BOT_TOKEN is set")
        if settings.slack_bot_token
        else Check("slack bot token", False, "set SLACK_BOT_TOKEN (the app's xoxb- token)")
    )
    if settings.slack_app_token:
        checks.append(Check("slack connection", True, "Socket Mode (SLACK_APP_TOKEN is set)"))
    elif settings.slack_signing_secret:
        checks.append(Check("slack connection", True, "HTTP mode (SLACK_SIGNING_SECRET is set)"))
    else:
        checks.append(
            Check(
                "slack connection",
                False,
                "set SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode, `serve --http`)",
            )
        )
    slack = settings.slack
    if slack.admins or slack.admin_group:
        group = f", group {slack.admin_group}" if slack.admin_group else ""
        checks.append(Check("admins", True, f"{len(slack.admins)} listed{group}"))
    else:
        checks.append(Check("admins", False, "set slack.admins (user ids) or slack.admin_group in the TOML"))
    checks.append(
        Check("admin channel", True, settings.slack.admin_channel)
        if settings.slack.admin_channel
        else Check("admin channel", False, "set slack.admin_channel: unowned tokens and escalations go there")
    )
    if settings.dry_run:
        checks.append(Check("dry run", None, "TOKENBOT_DRY_RUN=1: no mutating Databricks call will be made"))
    return checks


def _database_checks(engine: Engine, settings: Settings) -> list[Check]:
    where = safe_url(settings.database_url)
    try:
        current = db.current_revision(engine)
    except SQLAlchemyError as error:
        return [Check("database", False, f"{where} cannot be reached: {first_line(error)}")]
    head = db.head_revision()
    if current == head:
        return [Check("database", True, f"{where} at revision {current}")]
    return [
        Check(
            "database",
            False,
            f"{where} is at revision {current or 'none'}, not {head}: run `tokenbot db upgrade`",
        )
    ]


def _print_checks(checks: list[Check]) -> None:
    table = Table(title="tokenbot doctor", show_lines=False)
    table.add_column("check")
    table.add_column("status")
    table.add_column("detail / what to fix", overflow="fold")
    labels = {True: "[green]ok[/green]", False: "[red]fix[/red]", None: "[yellow]note[/yellow]"}
    for check in checks:
        table.add_row(check.name, labels[check.ok], escape(check.detail))
    out.print(table)


# ---------------------------------------------------------------------------------------------
# the live checks


def manifest_scopes(path: Path = MANIFEST) -> list[str] | None:
    """The bot scopes manifest.yml asks for; None when the file is not there (an installed package)."""
    try:
        manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return list(((manifest or {}).get("oauth_config") or {}).get("scopes", {}).get("bot") or [])


def live_checks(settings: Settings) -> list[Check]:
    """Slack, then every workspace: read-only calls with short timeouts."""
    return slack_checks(settings) + workspace_checks(settings)


def slack_checks(settings: Settings) -> list[Check]:
    if settings.slack_bot_token is None:
        return []  # the configuration checks already say to set it
    from bot.slack.client import make_client
    from bot.slack.health import doctor_checks

    channels = {
        key: channel
        for key, channel in (
            ("admin_channel", settings.slack.admin_channel),
            ("digest_channel", settings.slack.digest_channel),
        )
        if channel
    }
    client = make_client(settings, rate_limit_retries=2)
    client.timeout = DOCTOR_HTTP_SECONDS
    found = doctor_checks(client, manifest_scopes=manifest_scopes(), channels=channels)
    return [Check(*check) for check in found]


def workspace_checks(settings: Settings) -> list[Check]:
    from bot.databricks.gateway import SdkWorkspaceGateway
    from bot.databricks.records import GatewayError

    limits = settings.databricks.model_copy(
        update={
            "retry_timeout_seconds": min(settings.databricks.retry_timeout_seconds, DOCTOR_RETRY_SECONDS),
            "http_timeout_seconds": min(settings.databricks.http_timeout_seconds, DOCTOR_HTTP_SECONDS),
        }
    )
    checks: list[Check] = []
    for workspace in settings.workspaces:
        name = f"workspace {workspace.name}"
        try:
            probes = SdkWorkspaceGateway(workspace, limits).check_access()
        except GatewayError as error:
            checks.append(Check(name, False, error.message))
            continue
        problems = [(what, problem) for what, problem in probes if problem]
        if not problems:
            passed = ", ".join(what for what, _ in probes)
            checks.append(Check(name, True, f"{workspace.host}: {passed} ok"))
        for what, problem in problems:
            checks.append(Check(f"{name}: {what}", False, problem))
    return checks
