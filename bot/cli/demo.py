"""`tokenbot demo`: the whole story against local sandboxes (`bot/sandbox/demo.py`)."""

from __future__ import annotations

import typer

from bot.cli import output
from bot.cli.shared import EXIT_PARTIAL, out
from bot.logs import setup_logging


def demo(
    keep: bool = typer.Option(False, "--keep", help="Leave the sandboxes and the bot running afterwards, and "
                              "print their URLs and how to drive them."),
    http: bool = typer.Option(False, "--http", help="Run the bot in HTTP mode (signed requests to its port) "
                              "instead of Socket Mode."),
) -> None:
    """The whole story against local sandboxes (two Databricks workspaces, a Slack workspace, the
    bot in Socket Mode, or in HTTP mode with --http): no credentials needed. Exit 0 only if every step
    did what it should."""
    from bot.sandbox.demo import run_demo

    setup_logging("WARNING", "text")
    # A transcript is easier to read a little wider than 80 columns when it goes to a file.
    console = out if out.is_terminal else output.CleanConsole(width=120)
    if not run_demo(console, keep=keep, http=http):
        raise typer.Exit(EXIT_PARTIAL)
