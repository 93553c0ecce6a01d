"""What every command shares: the consoles, the exit codes, loading the settings, opening the
database, and errors as one line (never a traceback)."""

from __future__ import annotations

import typer
from rich.markup import escape
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot import db
from bot.cli.output import CleanConsole
from bot.config import ConfigError, Settings, WorkspaceConfig, load_settings
from bot.logs import setup_logging

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE = 0, 1, 2
NO_WORKSPACES = "no workspaces configured: add [[workspaces]] to the TOML file or set DATABRICKS_HOST"

out = CleanConsole()
err = CleanConsole(stderr=True)


def load_or_exit() -> Settings:
    """Settings for a command; bad configuration prints one line per problem and exits 2."""
    try:
        settings = load_settings()
    except ConfigError as error:
        for problem in error.problems:
            err.print(f"[red]error:[/red] {escape(problem)}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None
    setup_logging(settings.log_level, settings.log_format, settings.secrets())
    return settings


def unreachable(settings: Settings, error: Exception) -> typer.Exit:
    err.print(f"[red]error:[/red] database {escape(safe_url(settings.database_url))}: "
              f"{escape(first_line(error))}", highlight=False)
    return typer.Exit(EXIT_PARTIAL)


def safe_url(url: str) -> str:
    return make_url(db.normalise_url(url)).render_as_string(hide_password=True)


def first_line(error: Exception) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def open_database(settings: Settings) -> Engine:
    """The engine, once the database is reachable and migrated; else a clear message and exit."""
    engine = db.make_engine(settings.database_url)
    try:
        current = db.current_revision(engine)
    except SQLAlchemyError as error:
        raise unreachable(settings, error) from None
    if current != db.head_revision():
        err.print(
            "[red]error:[/red] the database is not up to date: run `tokenbot db upgrade` first",
            highlight=False,
        )
        raise typer.Exit(EXIT_USAGE)
    return engine


def usage_error(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    return typer.Exit(EXIT_USAGE)


def chosen_workspaces(settings: Settings, names: list[str] | None) -> list[WorkspaceConfig]:
    """The workspaces named (all when none is), or a usage error naming the unknown ones."""
    if not settings.workspaces:
        raise usage_error(NO_WORKSPACES)
    if not names:
        return list(settings.workspaces)
    known = {w.name: w for w in settings.workspaces}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise usage_error(f"unknown workspace {', '.join(unknown)}; configured: {', '.join(known)}")
    return [known[n] for n in names]
