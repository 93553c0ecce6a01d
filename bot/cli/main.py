"""The `tokenbot` command line: the Typer app, and every command bound to it in one place.

Each command lives in its own module of `bot/cli/`; what they share (consoles, exit codes, settings,
the database) is in `shared.py`, how results look in `output.py`. What talks to Slack and Databricks
is built by `bot/wiring.py`.

Exit codes: 0 success, 1 the work partly failed, 2 bad usage or configuration (one line per
problem, no traceback).
"""

from __future__ import annotations

import typer
from rich.markup import escape
from sqlalchemy.exc import SQLAlchemyError
from typer.core import TyperGroup

from bot import __version__
from bot.cli import db, demo, digest, doctor, enforce, events, remind, report, rotations, serve, sync, usage
from bot.cli.shared import EXIT_OK, EXIT_PARTIAL, err, first_line, out


class _CleanDatabaseErrors(TyperGroup):
    """A database failure in any command is one line and exit 1, never a traceback: the command's
    transaction was rolled back, so nothing is half-written."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SQLAlchemyError as error:
            problem = escape(first_line(error))
            err.print(f"[red]error:[/red] the database failed: {problem}. The work in hand was rolled "
                      "back; run the command again, and `tokenbot doctor` if it persists.",
                      highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_PARTIAL) from None


app = typer.Typer(
    cls=_CleanDatabaseErrors,
    rich_markup_mode="markdown",  # joins the docstrings' wrapped lines into paragraphs
    name="tokenbot",
    help="Governs Databricks personal access tokens from Slack: syncs every workspace's tokens, "
    "warns owners before auto-scoping, expiry or inactivity revocation hits them, and applies "
    "their decisions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        out.print(f"tokenbot {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", help="Print the version and exit.", callback=_show_version, is_eager=True
    ),
) -> None:
    """Configuration comes from the environment and TOKENBOT_CONFIG (default tokenbot.toml)."""


# In the order `tokenbot --help` lists them (the groups come after the commands).
app.command("doctor")(doctor.doctor)
app.command("sync")(sync.sync)
app.command("report")(report.report_command)
app.command("remind")(remind.remind)
app.command("enforce")(enforce.enforce)
app.command("rotations")(rotations.rotations)
app.command("digest")(digest.digest_command)
app.command("serve")(serve.serve)
app.command("demo")(demo.demo)
app.add_typer(db.app, name="db")
app.add_typer(events.app, name="events")
app.add_typer(usage.app, name="usage")
