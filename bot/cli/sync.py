"""`tokenbot sync`: read every workspace's tokens into the database, then match new owners to
Slack users."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from bot import clock
from bot.cli.shared import EXIT_PARTIAL, chosen_workspaces, err, load_or_exit, open_database, out, usage_error

if TYPE_CHECKING:  # the wiring loads Slack and Databricks: `report` and `doctor` do without them
    from bot.wiring import Wiring


def sync(
    workspace: list[str] = typer.Option(
        None, "--workspace", "-w", help="Sync only this workspace (repeat for several). Default: all."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
    accept_shrink: list[str] = typer.Option(
        None,
        "--accept-shrink",
        help="Apply this workspace's listing even though it shrank suspiciously "
        "(after checking that the tokens really are gone).",
    ),
) -> None:
    """Read every workspace's tokens into the database. Exit 1 if any workspace failed (the others
    are still synced; a failed one keeps its previous records)."""
    from bot.services import inventory  # here, not at the top: `report` and `doctor` do without it
    from bot.wiring import wire

    settings = load_or_exit()
    chosen = chosen_workspaces(settings, workspace)
    engine = open_database(settings)
    wiring = wire(settings, engine)
    pairs = [(w.name, w.host) for w in chosen]
    unknown = sorted(set(accept_shrink or ()) - {name for name, _ in pairs})
    if unknown:
        raise usage_error(f"--accept-shrink names a workspace not being synced: {', '.join(unknown)}")

    def run(on_done=None):
        return inventory.sync_workspaces(
            engine=engine,
            workspaces=pairs,
            gateway_for=wiring.gateway_for,
            policy=settings.policy,
            max_parallel=settings.databricks.max_parallel_workspaces,
            on_done=on_done,
            accept_shrink=frozenset(accept_shrink or ()),
        )

    if out.is_terminal and len(pairs) > 1 and not as_json:
        from rich.progress import Progress

        with Progress(console=out, transient=True) as progress:
            task = progress.add_task("Syncing workspaces", total=len(pairs))
            results = run(on_done=lambda _result: progress.advance(task))
    else:
        results = run()
    if as_json:
        sys.stdout.write(json.dumps([r.as_dict() for r in results], indent=2) + "\n")
    else:
        for result in results:
            style = "" if result.ok else "[red]"
            out.print(style + escape(inventory.sync_line(result)), highlight=False, soft_wrap=True)
    held = [r for r in results if r.held]
    if held:
        lines = [f":warning: tokenbot sync held *{r.workspace}*: {r.error}" for r in held]
        _alert_admins(wiring, "\n".join(lines))
    if settings.slack_bot_token and any(r.ok for r in results):
        _match_directory(wiring, quiet=as_json)
    if not all(r.ok for r in results):
        raise typer.Exit(EXIT_PARTIAL)


def _match_directory(wiring: Wiring, *, quiet: bool) -> None:
    """Match new Databricks users to Slack users in bulk (`users.list`) when that saves lookups;
    a Slack failure only means the reminder run looks them up one by one."""
    from bot.slack import directory

    try:
        found = directory.refresh(
            wiring.engine, wiring.client, wiring.settings.slack.email_domains_map, clock.now()
        )
    except Exception as error:
        err.print(f"Could not read the Slack directory ({type(error).__name__}); owners are looked up "
                  "one by one in the reminder run.", highlight=False)
        return
    if found is not None and not quiet:
        out.print(f"Slack directory: {found.users} users read, {found.matched} owners matched, "
                  f"{found.missed} left to a lookup by email.", highlight=False)


def _alert_admins(wiring: Wiring, text: str) -> None:
    """Tell the admins channel, when Slack is configured; the command's own output says it anyway."""
    settings = wiring.settings
    if not (settings.slack_bot_token and settings.slack.admin_channel):
        return
    from bot.slack.client import SlackError, error_code

    try:
        wiring.client.chat_postMessage(channel=settings.slack.admin_channel, text=text)
    except SlackError as error:
        problem = error_code(error)
        err.print(f"[yellow]warning:[/yellow] could not alert the admins channel: {problem}")
