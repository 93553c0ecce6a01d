"""`tokenbot usage`: observed API usage, read from each workspace's audit log."""

from __future__ import annotations

import json
import sys

import typer
from rich.markup import escape

from bot import clock, db
from bot.cli.shared import EXIT_PARTIAL, chosen_workspaces, load_or_exit, open_database, out, usage_error

app = typer.Typer(help="Observed API usage from the audit log.", no_args_is_help=True)


@app.command("refresh")
def usage_refresh(
    workspace: list[str] = typer.Option(
        None, "--workspace", "-w", help="Only this workspace (repeat for several). Default: all."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Read system.access.audit (the last policy.usage_lookback_days) through each workspace's
    audit_warehouse_id: API usage, who uses each token, and misuse findings. Exit 1 if any
    workspace failed (the others are still read)."""
    from bot.services import audit_read
    from bot.wiring import wire

    settings = load_or_exit()
    chosen = chosen_workspaces(settings, workspace)
    if not any(w.audit_warehouse_id for w in chosen):
        raise usage_error(
            "no workspace has audit_warehouse_id: add the id of a SQL warehouse that can read "
            "system.access.audit to its [[workspaces]] entry"
        )
    engine = open_database(settings)
    wiring = wire(settings, engine)
    results = audit_read.refresh_all(
        engine=engine,
        settings=settings,
        gateway_for=wiring.gateway_for,
        now=clock.now(),
        workspaces=[w.name for w in chosen],
    )
    posted = _post_findings(wiring)
    if as_json:
        sys.stdout.write(json.dumps([r.as_dict() for r in results], indent=2) + "\n")
    else:
        for result in results:
            style = "" if result.ok else "[red]"
            out.print(style + escape(_usage_line(result)), highlight=False, soft_wrap=True)
    if posted and not as_json:
        out.print(escape(posted), highlight=False, soft_wrap=True)
    if not all(r.ok for r in results):
        raise typer.Exit(EXIT_PARTIAL)


def _post_findings(wiring) -> str:
    """Post the misuse findings not posted yet to the admins channel; what happened, in a line."""
    from sqlalchemy import func, select

    from bot.jobs.runners import JobContext, post_misuse_findings
    from bot.models import MisuseFinding

    posted = 0
    if wiring.client is not None and wiring.settings.slack.admin_channel:
        posted = post_misuse_findings(JobContext.over(wiring))
    with db.session_scope(wiring.engine) as session:
        waiting = session.execute(
            select(func.count()).select_from(MisuseFinding).where(MisuseFinding.posted_at.is_(None))
        ).scalar_one()
    line = f"misuse: {posted} finding(s) posted to the admins channel" if posted else ""
    if waiting:
        line += "; " if line else "misuse: "
        line += (
            f"{waiting} finding(s) not posted yet (they need SLACK_BOT_TOKEN and [slack] admin_channel; "
            "the next usage refresh posts them)"
        )
    return line


def _usage_line(result) -> str:
    if result.skipped:
        return f"{result.workspace}: skipped (no audit_warehouse_id)"
    if not result.ok:
        return f"{result.workspace}: FAILED: {result.error}"
    line = (
        f"{result.workspace}: {result.rows} usage row(s) from {result.audit_groups} audit group(s): "
        f"{result.tied_to_tokens} tied to a token, {result.attributed_to_owners} to the owner only "
        f"(approximate); {result.unmatched_calls} call(s) by identities that own no token; "
        f"{result.seconds:.1f} s\n  who uses each token: {result.consumers} client/network row(s); "
        f"{result.misuse_findings} new misuse finding(s)"
    )
    if result.unmapped_services:
        unmapped = ", ".join(f"{name} ({calls})" for name, calls in sorted(result.unmapped_services.items()))
        line += f"\n  services with no known scope (kept, shown as such): {unmapped}"
    return line
