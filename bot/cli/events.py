"""`tokenbot events`: auto-scoping events from files (the webhook's twin, `bot/webhook.py`)."""

from __future__ import annotations

import json

import typer
from rich.markup import escape

from bot import clock, db
from bot.cli.shared import EXIT_PARTIAL, err, load_or_exit, open_database, out, usage_error

app = typer.Typer(help="Auto-scoping events (the webhook's, from files).", no_args_is_help=True)


@app.command("import")
def events_import(
    file: str = typer.Argument(..., help="A JSON Lines file: one auto-scoping event per line."),
) -> None:
    """Import auto-scoping events (DESIGN.md section 5 shape). Bad lines are reported with their
    number and why, the good ones imported; exit 1 if any line was bad or rejected (Databricks
    contradicts it). Ids already stored are reported as duplicates and not stored twice."""
    from pathlib import Path

    from bot.services import events
    from bot.wiring import wire

    settings = load_or_exit()
    path = Path(file)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise usage_error(f"{file}: cannot be read: {error}") from None
    engine = open_database(settings)
    workspaces = {w.name for w in settings.workspaces}
    gateway_for = wire(settings, engine).gateway_for
    counts = {"stored": 0, "applied": 0, "duplicate": 0, "bad": 0, "rejected": 0}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = events.parse_event(json.loads(line), workspaces=workspaces, now=clock.now())
        except ValueError as error:  # json.JSONDecodeError and EventError are both ValueErrors
            message = error.message if isinstance(error, events.EventError) else f"not valid JSON ({error})"
            err.print(f"[red]line {number}:[/red] {escape(message)}", highlight=False, soft_wrap=True)
            counts["bad"] += 1
            continue
        with db.session_scope(engine) as session:
            done = events.ingest(
                session=session, event=event, source="file", now=clock.now(), gateway_for=gateway_for
            )
        if done.duplicate:
            out.print(f"line {number}: {escape(event.id)} is already stored (duplicate)", highlight=False)
            counts["duplicate"] += 1
        elif done.rejected:
            err.print(f"[red]line {number}:[/red] rejected: {escape(done.rejected)}", highlight=False,
                      soft_wrap=True)
            counts["rejected"] += 1
        else:
            counts["stored"] += 1
            counts["applied"] += done.applied
    out.print(
        f"Imported {counts['stored']} event(s) ({counts['applied']} applied to known tokens, the rest "
        f"wait for a sync to confirm them); {counts['rejected']} rejected (Databricks contradicts them), "
        f"{counts['duplicate']} duplicate(s), {counts['bad']} bad line(s)."
    )
    if counts["bad"] or counts["rejected"]:
        raise typer.Exit(EXIT_PARTIAL)
