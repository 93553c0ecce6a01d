"""`tokenbot db`: database maintenance."""

from __future__ import annotations

import typer
from sqlalchemy.exc import SQLAlchemyError

from bot import db
from bot.cli.shared import load_or_exit, out, unreachable

app = typer.Typer(help="Database maintenance.", no_args_is_help=True)


@app.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations (safe to run again: nothing to do is not an error)."""
    settings = load_or_exit()
    engine = db.make_engine(settings.database_url)
    try:
        applied = db.migrate(engine)
    except SQLAlchemyError as error:
        raise unreachable(settings, error) from None
    if applied:
        out.print(f"Applied migrations {', '.join(applied)}; database is at {db.head_revision()}.")
    else:
        out.print(f"Database is up to date (revision {db.head_revision()}).")
