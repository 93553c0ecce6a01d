"""The `tokenbot` command line, and the composition root: settings, engine, gateways, Slack app
are built here and passed down.

Exit codes: 0 success, 1 the work partly failed, 2 bad usage or configuration (one line per
problem, no traceback).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass
from enum import StrEnum

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from typer.core import TyperGroup

from bot import __version__, clock, db, terminal
from bot.config import ConfigError, Settings, load_settings
from bot.logs import setup_logging
from bot.services import report

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE = 0, 1, 2

class _CleanDatabaseErrors(TyperGroup):
    """A database failure in any command is one line and exit 1, never a traceback: the command's
    transaction was rolled back, so nothing is half-written."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SQLAlchemyError as error:
            problem = escape(_first_line(error))
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
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")

out = terminal.CleanConsole()
err = terminal.CleanConsole(stderr=True)


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


def _unreachable(settings: Settings, error: Exception) -> typer.Exit:
    err.print(f"[red]error:[/red] database {escape(safe_url(settings.database_url))}: "
              f"{escape(_first_line(error))}", highlight=False)
    return typer.Exit(EXIT_PARTIAL)


def safe_url(url: str) -> str:
    return make_url(db.normalise_url(url)).render_as_string(hide_password=True)


# ---------------------------------------------------------------------------------------------
# db


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations (safe to run again: nothing to do is not an error)."""
    settings = load_or_exit()
    engine = db.make_engine(settings.database_url)
    try:
        applied = db.migrate(engine)
    except SQLAlchemyError as error:
        raise _unreachable(settings, error) from None
    if applied:
        out.print(f"Applied migrations {', '.join(applied)}; database is at {db.head_revision()}.")
    else:
        out.print(f"Database is up to date (revision {db.head_revision()}).")


# ---------------------------------------------------------------------------------------------
# doctor


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: a note, not a problem
    detail: str


@app.command()
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
            from bot.doctor import live_checks

            checks += [Check(*check) for check in live_checks(settings)]
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
        return [Check("database", False, f"{where} cannot be reached: {_first_line(error)}")]
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


def _first_line(error: Exception) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# ---------------------------------------------------------------------------------------------
# shared by the commands that work on the database


def open_database(settings: Settings) -> Engine:
    """The engine, once the database is reachable and migrated; else a clear message and exit."""
    engine = db.make_engine(settings.database_url)
    try:
        current = db.current_revision(engine)
    except SQLAlchemyError as error:
        raise _unreachable(settings, error) from None
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


# ---------------------------------------------------------------------------------------------
# sync


@app.command()
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

    settings = load_or_exit()
    chosen = _chosen_workspaces(settings, workspace)
    engine = open_database(settings)
    gateways = _gateway_factory(settings)
    pairs = [(w.name, w.host) for w in chosen]
    unknown = sorted(set(accept_shrink or ()) - {name for name, _ in pairs})
    if unknown:
        raise usage_error(f"--accept-shrink names a workspace not being synced: {', '.join(unknown)}")

    def run(on_done=None):
        return inventory.sync_workspaces(
            engine=engine,
            workspaces=pairs,
            gateway_for=gateways,
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
            out.print(style + escape(terminal.sync_line(result)), highlight=False, soft_wrap=True)
    held = [r for r in results if r.held]
    if held:
        lines = [f":warning: tokenbot sync held *{r.workspace}*: {r.error}" for r in held]
        _alert_admins(settings, "\n".join(lines))
    if settings.slack_bot_token and any(r.ok for r in results):
        _match_directory(settings, engine, quiet=as_json)
    if not all(r.ok for r in results):
        raise typer.Exit(EXIT_PARTIAL)


def _match_directory(settings: Settings, engine, *, quiet: bool) -> None:
    """Match new Databricks users to Slack users in bulk (`users.list`) when that saves lookups;
    a Slack failure only means the reminder run looks them up one by one."""
    from bot.slack import directory
    from bot.slack.client import make_client

    try:
        client = make_client(settings)
        found = directory.refresh(engine, client, settings.slack.email_domains_map, clock.now())
    except Exception as error:
        err.print(f"Could not read the Slack directory ({type(error).__name__}); owners are looked up "
                  "one by one in the reminder run.", highlight=False)
        return
    if found is not None and not quiet:
        out.print(f"Slack directory: {found.users} users read, {found.matched} owners matched, "
                  f"{found.missed} left to a lookup by email.", highlight=False)


def _alert_admins(settings: Settings, text: str) -> None:
    """Tell the admins channel, when Slack is configured; the command's own output says it anyway."""
    if not (settings.slack_bot_token and settings.slack.admin_channel):
        return
    from slack_sdk.errors import SlackApiError

    from bot.slack.client import make_client

    try:
        make_client(settings).chat_postMessage(channel=settings.slack.admin_channel, text=text)
    except SlackApiError as error:
        problem = error.response.get("error")
        err.print(f"[yellow]warning:[/yellow] could not alert the admins channel: {problem}")


def _chosen_workspaces(settings: Settings, names: list[str] | None):
    if not settings.workspaces:
        raise usage_error(
            "no workspaces configured: add [[workspaces]] to the TOML file or set DATABRICKS_HOST"
        )
    if not names:
        return list(settings.workspaces)
    known = {w.name: w for w in settings.workspaces}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise usage_error(f"unknown workspace {', '.join(unknown)}; configured: {', '.join(known)}")
    return [known[n] for n in names]


def _gateway_factory(settings: Settings):
    from bot.databricks.gateway import gateway_factory

    return gateway_factory(settings.workspaces, settings.databricks)


# ---------------------------------------------------------------------------------------------
# report


class ReportFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


@app.command("report")
def report_command(
    format: ReportFormat = typer.Option(ReportFormat.table, "--format", "-f", help="table, json or csv."),  # noqa: A002
    days: int | None = typer.Option(None, "--days", min=0, help="Only tokens with a deadline within N days."),
    workspace: str | None = typer.Option(None, "--workspace", "-w", help="Only this workspace."),
    owner: str | None = typer.Option(
        None, "--owner", help="Only this owner (email, application id, Databricks id or Slack id)."
    ),
) -> None:
    """Live tokens with their deadlines and findings, from the database (run `tokenbot sync` first)."""
    settings = load_or_exit()
    engine = open_database(settings)
    with report.without_gc():  # 100,000 tokens build a large acyclic graph: see without_gc
        shown = _report(engine, settings, format, days=days, workspace=workspace, owner=owner)
    if not shown:
        err.print(
            "No live tokens match"
            + (f" a deadline within {days} days" if days is not None else "")
            + (" (nothing synced yet: run `tokenbot sync`)" if not _anything_synced(engine) else "")
            + "."
        )


def _report(
    engine: Engine,
    settings: Settings,
    format: ReportFormat,  # noqa: A002
    *,
    days: int | None,
    workspace: str | None,
    owner: str | None,
) -> int:
    """Write the report; returns how many tokens it shows. The views die when this returns, while
    the cycle collector is still off: alive, they would make its first pass walk all of them."""
    now = clock.now()
    with db.session_scope(engine) as session:
        views = report.token_views(
            session=session, policy=settings.policy, now=now, workspace=workspace, owner=owner
        )
    if days is not None:
        views = report.due_within(views, now, days)
    views = report.by_nearest_deadline(views)
    _write_report(views, format, settings, now)
    return len(views)


def _write_report(views: list, format: ReportFormat, settings: Settings, now) -> None:  # noqa: A002
    if format is ReportFormat.json:
        sys.stdout.writelines(terminal.report_json(views, settings.policy, now))
    elif format is ReportFormat.csv:
        sys.stdout.write(terminal.report_csv(views, settings.policy, now))
    elif views:
        # Piped into a file or a pager, a table folded to 80 columns helps nobody.
        console = out if out.is_terminal else terminal.CleanConsole(width=200)
        console.print(terminal.report_table(views, now))


def _anything_synced(engine: Engine) -> bool:
    from sqlalchemy import select

    from bot.models import Workspace

    with db.session_scope(engine) as session:
        return (
            session.execute(select(Workspace.name).where(Workspace.last_success_at.is_not(None))).first()
            is not None
        )


# ---------------------------------------------------------------------------------------------
# remind


@app.command()
def remind(
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print who would get what; send and record nothing."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the run's figures (and previews) as JSON."),
) -> None:
    """One reminder run: message each owner about every token whose reminder is due (one message
    per owner), escalate undecided ones to the admins channel. Exit 1 if some could not be sent."""
    settings = load_or_exit()
    engine = open_database(settings)
    if settings.slack_bot_token is None:
        raise usage_error(
            "SLACK_BOT_TOKEN is not set: tokenbot needs the app's bot token to find owners "
            "in Slack and message them"
        )
    from bot.services import reminders
    from bot.slack.client import make_client
    from bot.slack.directory import SlackDirectory
    from bot.slack.messenger import SlackMessenger

    client = make_client(settings)
    summary = reminders.run(
        engine=engine,
        policy=settings.policy,
        directory=SlackDirectory(client, settings.slack.email_domains_map),
        sender=SlackMessenger(client),
        admin_channel=settings.slack.admin_channel,
        now=clock.now(),
        dry_run=dry_run,
    )
    if as_json:
        sys.stdout.write(json.dumps(dataclasses.asdict(summary), indent=2) + "\n")
    elif dry_run:
        for preview in summary.previews:
            out.print(escape(preview), highlight=False, soft_wrap=True)
        out.print(
            f"Dry run: {len(summary.previews)} message(s) for {summary.planned} reminder(s) would be sent; "
            f"{summary.held_for_quiet_hours} held for quiet hours. Nothing was sent or recorded."
        )
    else:
        out.print(
            f"Sent {summary.sent_messages} message(s) covering {summary.sent_notifications} reminder(s) "
            f"({summary.escalations} escalation(s)); {summary.failed} failed, {summary.left_pending} left "
            f"for the next run, {summary.held_for_quiet_hours} held for quiet hours."
            + (f" {summary.lookups_failed} owner lookup(s) failed and wait for the next run."
               if summary.lookups_failed else "")
        )
    if summary.failed or summary.left_pending or summary.lookups_failed:
        raise typer.Exit(EXIT_PARTIAL)


# ---------------------------------------------------------------------------------------------
# enforce


@app.command()
def enforce(
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Say what would be revoked and what holds each token back; change nothing."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the pass (every overdue token) as JSON."),
) -> None:
    """One enforcement pass, exactly as the hourly job runs it: revoke the overdue tokens the guards
    let through (with policy.enforce = false, escalate them), and say what held the others back
    (clock skew, breaker, stale sync, recent use, open request). Exit 1 if a revocation or a message
    failed, or a guard stopped the whole pass (the clock, the breaker)."""
    settings = load_or_exit()
    if not settings.workspaces:
        raise usage_error(
            "no workspaces configured: add [[workspaces]] to the TOML file or set DATABRICKS_HOST"
        )
    engine = open_database(settings)
    if settings.slack_bot_token is None:
        raise usage_error(
            "SLACK_BOT_TOKEN is not set: enforcement checks the clock against Slack's and tells "
            "owners and admins what it did"
        )
    from bot.scheduler import JobContext, enforcement_pass
    from bot.slack.client import make_client

    context = JobContext(
        settings=settings, engine=engine, client=make_client(settings), gateway_for=_gateway_factory(settings)
    )
    summary = enforcement_pass(context, preview=dry_run)
    if as_json:
        sys.stdout.write(json.dumps(summary.as_dict(), indent=2) + "\n")
    else:
        for line in terminal.enforcement_lines(summary, enforce=settings.policy.enforce):
            out.print(escape(line), highlight=False, soft_wrap=True)
    if summary.failed or summary.notify_failed or summary.stopped:
        raise typer.Exit(EXIT_PARTIAL)


# ---------------------------------------------------------------------------------------------
# events

events_app = typer.Typer(help="Auto-scoping events (the webhook's, from files).", no_args_is_help=True)
app.add_typer(events_app, name="events")


@events_app.command("import")
def events_import(
    file: str = typer.Argument(..., help="A JSON Lines file: one auto-scoping event per line."),
) -> None:
    """Import auto-scoping events (DESIGN.md section 5 shape). Bad lines are reported with their
    number and why, the good ones imported; exit 1 if any line was bad or rejected (Databricks
    contradicts it). Ids already stored are reported as duplicates and not stored twice."""
    from pathlib import Path

    from bot.services import events

    settings = load_or_exit()
    path = Path(file)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise usage_error(f"{file}: cannot be read: {error}") from None
    engine = open_database(settings)
    workspaces = {w.name for w in settings.workspaces}
    gateway_for = _gateway_factory(settings)
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


# ---------------------------------------------------------------------------------------------
# usage

usage_app = typer.Typer(help="Observed API usage from the audit log.", no_args_is_help=True)
app.add_typer(usage_app, name="usage")


@usage_app.command("refresh")
def usage_refresh(
    workspace: list[str] = typer.Option(
        None, "--workspace", "-w", help="Only this workspace (repeat for several). Default: all."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Read system.access.audit (the last policy.usage_lookback_days) through each workspace's
    audit_warehouse_id into api_usage. Exit 1 if any workspace failed (the others are still read)."""
    from bot.services import usage

    settings = load_or_exit()
    chosen = _chosen_workspaces(settings, workspace)
    if not any(w.audit_warehouse_id for w in chosen):
        raise usage_error(
            "no workspace has audit_warehouse_id: add the id of a SQL warehouse that can read "
            "system.access.audit to its [[workspaces]] entry"
        )
    engine = open_database(settings)
    results = usage.refresh_usage(
        engine=engine,
        settings=settings,
        gateway_for=_gateway_factory(settings),
        now=clock.now(),
        workspaces=[w.name for w in chosen],
    )
    if as_json:
        sys.stdout.write(json.dumps([r.as_dict() for r in results], indent=2) + "\n")
    else:
        for result in results:
            style = "" if result.ok else "[red]"
            out.print(style + escape(_usage_line(result)), highlight=False, soft_wrap=True)
    if not all(r.ok for r in results):
        raise typer.Exit(EXIT_PARTIAL)


def _usage_line(result) -> str:
    if result.skipped:
        return f"{result.workspace}: skipped (no audit_warehouse_id)"
    if not result.ok:
        return f"{result.workspace}: FAILED: {result.error}"
    line = (
        f"{result.workspace}: {result.rows} usage row(s) from {result.audit_groups} audit group(s): "
        f"{result.tied_to_tokens} tied to a token, {result.attributed_to_owners} to the owner only "
        f"(approximate); {result.unmatched_calls} call(s) by identities that own no token; "
        f"{result.seconds:.1f} s"
    )
    if result.unmapped_services:
        unmapped = ", ".join(f"{name} ({calls})" for name, calls in sorted(result.unmapped_services.items()))
        line += f"\n  services with no known scope (kept, shown as such): {unmapped}"
    return line


# ---------------------------------------------------------------------------------------------
# digest


@app.command("digest")
def digest_command(
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the digest; post and record nothing."),
) -> None:
    """Post the channel digest now (to slack.digest_channel): deadlines of the next 14 days,
    unanswered escalations, decisions and new risky tokens since the last digest, failing syncs."""
    from bot.services import digest
    from bot.slack.blocks import digest as digest_blocks

    settings = load_or_exit()
    engine = open_database(settings)
    if dry_run:
        with db.session_scope(engine) as session:
            built = digest.build(
                session=session, policy=settings.policy, now=clock.now(), tz=settings.slack.digest_timezone
            )
        _, blocks = digest_blocks.digest_message(built)
        out.print(escape(digest_blocks.as_text(blocks)), highlight=False, soft_wrap=True)
        out.print("Dry run: nothing was posted or recorded.")
        return
    if settings.slack_bot_token is None:
        raise usage_error("SLACK_BOT_TOKEN is not set: tokenbot needs the app's bot token to post the digest")
    if not settings.slack.digest_channel:
        raise usage_error("slack.digest_channel is not set: add the channel's id to [slack] in the TOML file")
    from bot.services.ports import DeliveryError
    from bot.slack.client import make_client
    from bot.slack.notices import SlackDigestPoster

    try:
        posted = digest.run(
            engine=engine,
            policy=settings.policy,
            poster=SlackDigestPoster(make_client(settings)),
            channel=settings.slack.digest_channel,
            now=clock.now(),
            tz=settings.slack.digest_timezone,
            chart=settings.slack.digest_chart,
        )
    except DeliveryError as error:
        err.print(f"[red]error:[/red] {escape(error.message)}", highlight=False)
        raise typer.Exit(EXIT_PARTIAL) from None
    out.print(f"Digest posted to {settings.slack.digest_channel}: {posted.summary()}", highlight=False)


# ---------------------------------------------------------------------------------------------
# serve


@app.command()
def serve(
    http: bool = typer.Option(False, "--http", help="Take Slack's requests over HTTP, not Socket Mode."),
    port: int = typer.Option(
        3000, "--port", min=1, max=65535, help="The port to listen on (Socket Mode: health and metrics only)."
    ),
    host: str = typer.Option("0.0.0.0", "--host", help="The address to listen on."),  # noqa: S104
    no_scheduler: bool = typer.Option(
        False, "--no-scheduler", help="Answer Slack only: no scheduled sync, reminders, digest, enforcement."
    ),
    job_interval: list[str] = typer.Option(
        None, "--job-interval", hidden=True, help="JOB=SECONDS: run a job on this interval (tests, trials)."
    ),
) -> None:
    """Run the bot: Socket Mode by default (SLACK_APP_TOKEN), or HTTP mode with --http (/slack/events,
    /healthz, /readyz, /metrics); the scheduler runs in both. SIGTERM stops it cleanly (exit 0)."""
    from datetime import timedelta

    from bot.serve import ServeError
    from bot.serve import serve as run_server

    settings = load_or_exit()
    engine = open_database(settings)
    if settings.slack_bot_token is None:
        raise usage_error("SLACK_BOT_TOKEN is not set: tokenbot needs the app's bot token (xoxb-...)")
    if http and settings.slack_signing_secret is None:
        raise usage_error("SLACK_SIGNING_SECRET is not set: HTTP mode cannot verify that Slack sent requests")
    if not http and settings.slack_app_token is None:
        raise usage_error(
            "SLACK_APP_TOKEN is not set: Socket Mode needs the app-level token (xapp-...); "
            "or serve over HTTP with `tokenbot serve --http`"
        )
    intervals = {}
    for item in job_interval or ():
        job, _, seconds = item.partition("=")
        if not job or not seconds.isdigit() or int(seconds) < 1:
            raise usage_error(f"--job-interval {item!r}: write JOB=SECONDS, such as reminders=60")
        intervals[job] = timedelta(seconds=int(seconds))
    try:
        run_server(
            settings,
            engine,
            http=http,
            host=host,
            port=port,
            scheduler=not no_scheduler,
            intervals=intervals,
        )
    except ServeError as error:
        raise usage_error(str(error)) from None


# ---------------------------------------------------------------------------------------------
# demo


@app.command()
def demo(
    keep: bool = typer.Option(False, "--keep", help="Leave the sandboxes and the bot running afterwards, and "
                              "print their URLs and how to drive them."),
    http: bool = typer.Option(False, "--http", help="Run the bot in HTTP mode (signed requests to its port) "
                              "instead of Socket Mode."),
) -> None:
    """The whole story against local sandboxes (two Databricks workspaces, a Slack workspace, the
    bot in Socket Mode, or in HTTP mode with --http): no credentials needed. Exit 0 only if every step
    did what it should."""
    from bot.logs import setup_logging as _setup
    from bot.sandbox.demo import run_demo

    _setup("WARNING", "text")
    # A transcript is easier to read a little wider than 80 columns when it goes to a file.
    console = out if out.is_terminal else terminal.CleanConsole(width=120)
    if not run_demo(console, keep=keep, http=http):
        raise typer.Exit(EXIT_PARTIAL)
