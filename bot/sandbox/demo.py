"""`tokenbot demo`: the whole story against local sandboxes, with no Slack workspace and no
Databricks account.

Two Databricks workspaces and a Slack workspace run on 127.0.0.1; the bot runs in this process,
in Socket Mode by default (it opens a WebSocket to the Slack sandbox, as `tokenbot serve` does) or
in HTTP mode on a real port (`--http`); a temporary SQLite database holds its records. The story
drives the bot the way Slack would (envelopes over the socket, or really signed HTTP requests, from
the Slack sandbox's driver) and runs the scheduled jobs by hand, then checks each step against what
it should have done.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from sqlalchemy import inspect, select, text

from bot import clock, db
from bot.config import Settings, load_settings
from bot.models import Decision, Exemption, Token
from bot.sandbox.databricks import DatabricksSandbox
from bot.sandbox.seed import (
    ADMIN,
    ADMIN_CHANNEL,
    DIGEST_CHANNEL,
    ETL_APP_ID,
    SECRET_KEY,
    SECRET_SCOPE,
    Seeded,
    seed,
)
from bot.sandbox.slack import SlackSandbox

WORKSPACES = ("prod", "analytics")


@dataclass
class Verdict:
    step: str
    expected: str
    happened: str
    ok: bool


class Demo:
    """Sandboxes, seed, bot; then the story, step by step."""

    def __init__(self, console: Console, workdir: Path, *, http: bool = False) -> None:
        self.console = console
        self.workdir = workdir
        self.mode = "http" if http else "socket"
        self.verdicts: list[Verdict] = []
        self._stack = ExitStack()

    # setting the stage ---------------------------------------------------------------------------
    def __enter__(self) -> Demo:
        from bot.jobs.runners import JobContext
        from bot.slack.app import build_app
        from bot.slack.client import make_client
        from bot.web import BackgroundServer, WebApp
        from bot.wiring import make_deps

        self.prod = self._stack.enter_context(DatabricksSandbox(workspace_id=1001))
        self.analytics = self._stack.enter_context(DatabricksSandbox(workspace_id=1002))
        self.slack = self._stack.enter_context(SlackSandbox())
        self.now = clock.now()
        self.seeded: Seeded = seed(self.prod, self.analytics, self.slack, self.now)
        self.settings = self._configure()
        self.engine = db.make_engine(self.settings.database_url)
        db.migrate(self.engine)
        self.client = make_client(self.settings)
        self.deps = make_deps(self.settings, self.engine, self.client)
        socket_mode = self.mode == "socket"
        bolt = build_app(self.settings, self.deps, self.client, socket_mode=socket_mode)
        if socket_mode:  # the bot connects out to Slack; its port serves only health, readiness, metrics
            self._connect(bolt)
            web = WebApp(bolt, self.engine, None)
        else:
            web = WebApp(bolt, self.engine, self.settings.slack_signing_secret.get_secret_value())
        self.server = self._stack.enter_context(BackgroundServer(web))
        self.jobs = JobContext(
            settings=self.settings, engine=self.engine, client=self.client, gateway_for=self.deps.gateway_for
        )
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()
        self.engine.dispose()

    def _connect(self, bolt) -> None:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        handler = SocketModeHandler(bolt, self.settings.slack_app_token.get_secret_value())
        handler.connect()
        self._stack.callback(handler.close)
        if not handler.client.is_connected():
            raise RuntimeError("the bot could not open its Socket Mode connection to the Slack sandbox")

    @property
    def slack_url(self) -> str | None:
        """Where the driver sends Slack's requests: the bot's endpoint in HTTP mode, none in Socket Mode."""
        return self.server.url + "/slack/events" if self.mode == "http" else None

    def _configure(self) -> Settings:
        config = self.workdir / "tokenbot.toml"
        config.write_text(f"""
[[workspaces]]
name = "prod"
host = "{self.prod.url}"
token_env = "DEMO_PROD_TOKEN"
audit_warehouse_id = "demo-warehouse"

[[workspaces]]
name = "analytics"
host = "{self.analytics.url}"
token_env = "DEMO_ANALYTICS_TOKEN"

[policy]
org_max_inactive_days = 0
org_max_lifetime_days = 365
quiet_hours = "off"
enforce = true
rotation_grace_hours = 0

[slack]
admins = ["{ADMIN}"]
admin_channel = "{ADMIN_CHANNEL}"
digest_channel = "{DIGEST_CHANNEL}"
digest_chart = true

[[secret_bindings]]
workspace = "prod"
application_id = "{ETL_APP_ID}"
scope = "{SECRET_SCOPE}"
key = "{SECRET_KEY}"
""")
        os.environ.update(
            TOKENBOT_CONFIG=str(config),
            TOKENBOT_DATABASE_URL=f"sqlite:///{self.workdir / 'tokenbot-demo.db'}",
            DEMO_PROD_TOKEN=self.prod.admin_token,
            DEMO_ANALYTICS_TOKEN=self.analytics.admin_token,
            SLACK_BOT_TOKEN=self.slack.bot_token,
            SLACK_SIGNING_SECRET=self.slack.signing_secret,
            SLACK_APP_TOKEN=self.slack.app_token,
            TOKENBOT_SLACK_API_URL=self.slack.url,
        )
        for name in ("TOKENBOT_DRY_RUN", "DATABRICKS_HOST"):
            os.environ.pop(name, None)
        return load_settings()

    # the story ------------------------------------------------------------------------------------
    def run(self) -> bool:
        steps: list[tuple[str, Callable[[], Verdict]]] = [
            ("Sync both workspaces", self.sync),
            ("What is coming", self.upcoming_report),
            ("Remind every owner", self.remind),
            ("The rare job keeps its Jobs scope", self.confirm_rare_scopes),
            ("An owner revokes a test token", self.owner_revokes),
            ("An admin extends a policy deadline", self.admin_extends),
            ("A service principal's token is rotated", self.rotate),
            ("Someone else's token is refused", self.stranger_refused),
            ("tokenbot enforces its own policy", self.enforce),
            ("A forged request is rejected", self.forged_request),
            ("/tokens upcoming, as an admin", self.tokens_upcoming),
            ("The channel digest", self.digest),
        ]
        for title, step in steps:
            self.console.rule(f"[bold]{title}")
            try:
                verdict = step()
            except Exception as error:  # a broken step is a failed step; the story goes on
                verdict = Verdict(title, "", f"crashed: {type(error).__name__}: {error}", False)
            verdict.step = title
            self.verdicts.append(verdict)
            mark = "[green]✓[/green]" if verdict.ok else "[red]✗[/red]"
            self.console.print(f"{mark} {escape(verdict.happened)}", highlight=False)
        self.decision_log()
        self.verdict_table()
        return all(v.ok for v in self.verdicts)

    def sync(self) -> Verdict:
        from bot.cli.output import sync_line
        from bot.services import usage

        results = self.deps.run_sync()
        for result in results:
            self.console.print("  " + escape(sync_line(result)), highlight=False)
        refreshed = usage.refresh_usage(
            engine=self.engine, settings=self.settings, gateway_for=self.deps.gateway_for, now=clock.now()
        )
        self.console.print(f"  audit usage refreshed for {sum(1 for r in refreshed if r.ok)} workspace(s)")
        tokens = sum(r.tokens for r in results)
        ok = all(r.ok for r in results) and tokens == 40 and all(r.ok for r in refreshed)
        return Verdict(
            "", "2 workspaces, 40 tokens", f"{len(results)} workspaces synced, {tokens} tokens", ok
        )

    def upcoming_report(self) -> Verdict:
        from bot.cli.output import report_table
        from bot.services import report

        now = clock.now()
        with db.session_scope(self.engine) as session:
            views = report.by_nearest_deadline(
                report.due_within(
                    report.token_views(session=session, policy=self.settings.policy, now=now), now, 14
                )
            )
        self.console.print(report_table(views, now))
        return Verdict(
            "",
            "the tokens due within 14 days",
            f"{len(views)} tokens have a deadline within 14 days",
            len(views) >= 8,
        )

    def remind(self) -> Verdict:
        from bot.jobs.runners import reminders_job
        from bot.slack.blocks import as_text

        reminders_job(self.jobs)
        counts = {}
        for person_id, name in self._people():
            messages = self.slack.messages(person_id)
            if messages:
                counts[name] = len(messages)
                self.console.print(
                    Panel(escape(as_text(messages[-1]["blocks"])), title=f"DM to {name}", expand=False)
                )
        admins = self.slack.messages(ADMIN_CHANNEL)
        if admins:
            self.console.print(
                Panel(escape(as_text(admins[-1]["blocks"])), title="#tokenbot-admins", expand=False)
            )
        leaver = any("tom" in json.dumps(m["blocks"]).lower() for m in admins)
        ok = bool(counts) and all(n == 1 for n in counts.values()) and leaver
        return Verdict(
            "",
            "one DM per owner with due tokens; the leaver's token to the admins",
            f"{delivered(counts)}; admins channel: "
            f"{len(admins)} message(s), the leaver's token {'included' if leaver else 'MISSING'}",
            ok,
        )

    def confirm_rare_scopes(self) -> Verdict:
        message, reference = self._reminder_for("U0PRIYA", "rare_job")
        self._click("U0PRIYA", message, "token_confirm_scopes", reference)
        modal = self._wait(lambda: self.slack.views("U0PRIYA", open_only=True), "the Confirm scopes modal")[
            -1
        ]
        select_block = next(b for b in modal["blocks"] if b.get("block_id") == "scopes")
        preselected = sorted(o["value"] for o in select_block["element"].get("initial_options", []))
        self.console.print(
            f"  the modal pre-selects {preselected} (jobs: seen once in the audit log, 80 days ago)"
        )
        self.slack.submit(
            self.slack_url, "U0PRIYA", modal["id"], {"scopes": {"choose": ["sql", "jobs"]}}, mode=self.mode
        )
        patch = self._wait(lambda: [r for r in self.prod.requests if r.method == "PATCH"], "the PATCH")[-1]
        scopes = sorted(patch.json["token"]["scopes"])
        self.console.print(f"  Databricks saw PATCH {patch.path} with scopes {scopes}")
        return Verdict(
            "",
            "PATCH with sql + jobs",
            f"pre-selected {preselected}; PATCH scopes {scopes}",
            scopes == ["jobs", "sql"] and "jobs" in preselected,
        )

    def owner_revokes(self) -> Verdict:
        message, reference = self._reminder_for("U0LENA", "test_token")
        self._click("U0LENA", message, "token_revoke", reference)
        deleted = self._wait(
            lambda: [r for r in self.analytics.requests if r.method == "DELETE"], "the DELETE"
        )
        self.console.print(f"  Databricks saw DELETE {deleted[-1].path}")
        gone = self.seeded.token("test_token") not in {t["token_id"] for t in self.analytics.tokens()}
        return Verdict("", "DELETE of Lena's test token", f"{len(deleted)} DELETE; token gone: {gone}", gone)

    def admin_extends(self) -> Verdict:
        token_id = self.seeded.token("policy_extend")
        response = self.slack.command(
            self.slack_url, ADMIN, f"extend {token_id[:10]} 14 quarter close needs it", mode=self.mode
        )
        answer = self._wait(lambda: self.slack.response_url_posts(), "the answer")[-1]["body"]
        self.console.print(f"  /tokens extend → {escape(answer.get('text', ''))}")
        with db.session_scope(self.engine) as session:
            exemptions = session.execute(select(Exemption)).scalars().all()
        ok = response.status == 200 and len(exemptions) == 1 and exemptions[0].deadline_kind == "org_policy"
        until = exemptions[0].until.date().isoformat() if exemptions else "none"
        return Verdict("", "an exemption from the organisation's policy", f"exemption until {until}", ok)

    def rotate(self) -> Verdict:
        from bot.jobs.runners import rotations_job

        old = self.seeded.token("sp_rotate")
        message, reference = self._reminder_in(ADMIN_CHANNEL, old)
        self._click(ADMIN, message, "token_extend", reference)
        modal = self._wait(lambda: self.slack.views(ADMIN, open_only=True), "the Extend modal")[-1]
        self.slack.submit(
            self.slack_url,
            ADMIN,
            modal["id"],
            {"days": {"days": "30"}, "reason": {"reason": "nightly etl must not stop"}},
            mode=self.mode,
        )
        secret = self._wait(lambda: self.prod.secrets().get((SECRET_SCOPE, SECRET_KEY)), "the secret")
        rotations_job(self.jobs)  # grace period 0 in the demo: the old token goes at once
        old_gone = old not in {t["token_id"] for t in self.prod.tokens()}
        leaked = self._leaks(str(secret))
        self.console.print(
            f"  new token written to secret {SECRET_SCOPE}/{SECRET_KEY} "
            f"(value never shown); old token revoked: {old_gone}; value found elsewhere: {leaked}"
        )
        return Verdict(
            "",
            "new token in the secret, old one revoked, value nowhere else",
            f"secret written, old revoked: {old_gone}, leaks: {leaked or 'none'}",
            old_gone and not leaked,
        )

    def stranger_refused(self) -> Verdict:
        message, reference = self._reminder_for("U0SAM", "expiring")
        before = len([r for r in self.prod.requests if r.method == "DELETE"])
        self._click("U0MARCO", message, "token_revoke", reference)
        refused = self._wait(lambda: self._decisions(status="refused", actor="U0MARCO"), "the refusal")
        after = len([r for r in self.prod.requests if r.method == "DELETE"])
        why = refused[-1].parameters.get("refused")
        self.console.print(f"  Marco's click on Sam's token: {refused[-1].status} ({why})")
        return Verdict(
            "",
            "refused, recorded, nothing called",
            f"{refused[-1].status}; DELETEs {before} → {after}",
            after == before,
        )

    def enforce(self) -> Verdict:
        from bot.jobs.runners import enforcement_job

        token_id = self.seeded.token("overdue_policy")
        enforcement_job(self.jobs)
        gone = token_id not in {t["token_id"] for t in self.analytics.tokens()}
        by_bot = [
            d
            for d in self._decisions(status="applied")
            if d.actor_slack_id == "tokenbot" and d.action == "revoke"
        ]
        self.console.print(
            f"  Nina's token (380 days old; the policy allows 365) revoked by tokenbot: {gone}"
        )
        return Verdict(
            "",
            "tokenbot revokes the overdue token",
            f"revoked: {gone}; tokenbot decisions: {len(by_bot)}",
            gone and len(by_bot) >= 1,
        )

    def forged_request(self) -> Verdict:
        message, reference = self._reminder_for("U0SAM", "expiring")
        before = len(self._decisions())
        # In Socket Mode the bot has no Slack endpoint at all (it connected out to Slack with its
        # app-level token): a forged request sent to its port has nowhere to go.
        response = self.slack.click(
            self.server.url + "/slack/events",
            "U0SAM",
            message["channel"],
            message["ts"],
            "token_revoke",
            block_id=f"actions:{reference}",
            bad_signature=True,
        )
        time.sleep(0.3)
        after = len(self._decisions())
        refused = 401 if self.mode == "http" else 404
        self.console.print(f"  a click with a bad signature, sent to the bot's port: HTTP {response.status}")
        return Verdict(
            "",
            f"HTTP {refused}, nothing recorded",
            f"HTTP {response.status}, decisions {before} → {after}",
            response.status == refused and before == after,
        )

    def tokens_upcoming(self) -> Verdict:
        from bot.slack.blocks import as_text

        before = len(self.slack.response_url_posts())
        self.slack.command(self.slack_url, ADMIN, "upcoming", mode=self.mode)
        answer = self._wait(lambda: self.slack.response_url_posts()[before:], "the answer")[-1]["body"]
        self.console.print(
            Panel(escape(as_text(answer.get("blocks") or [])), title="/tokens upcoming", expand=False)
        )
        return Verdict(
            "",
            "deadlines of the next 14 days, by day",
            f"{len(answer.get('blocks') or [])} blocks",
            bool(answer.get("blocks")),
        )

    def digest(self) -> Verdict:
        from bot.jobs.runners import digest_job

        before = len(self.slack.messages(DIGEST_CHANNEL))
        digest_job(self.jobs)
        posted = self.slack.messages(DIGEST_CHANNEL)[before:]  # the digest, then its chart as a file
        if not any(m.get("blocks") for m in posted):
            return Verdict("", "a digest in the channel", "no digest posted", False)
        shown = "\n".join(as_shown(message) for message in posted)
        self.console.print(Panel(escape(shown), title="#platform-digest", expand=False))
        charts = [f for f in self.slack.files() if f["content"]]
        chart_path = None
        if charts:
            output = Path.cwd() / "demo-output"  # kept after the demo, unlike its temporary database
            output.mkdir(exist_ok=True)
            chart_path = output / "digest-chart.png"
            chart_path.write_bytes(charts[-1]["content"])
            self.console.print(f"  chart saved to {chart_path}")
        return Verdict(
            "",
            "digest posted with its chart",
            f"digest posted; chart: {chart_path or 'none'}",
            chart_path is not None,
        )

    # the record --------------------------------------------------------------------------------
    def decision_log(self) -> None:
        table = Table(title="Decision log (from the database)", title_justify="left")
        for column in ("#", "action", "status", "actor", "role", "token", "detail"):
            table.add_column(column, overflow="fold")
        with db.session_scope(self.engine) as session:
            rows = session.execute(
                select(Decision, Token.token_id)
                .outerjoin(Token, Token.id == Decision.token_pk)
                .order_by(Decision.id)
            ).all()
        for decision, token_id in rows:
            detail = decision.parameters.get("refused") or decision.parameters.get("reason") or ""
            table.add_row(
                str(decision.id),
                decision.action,
                decision.status,
                decision.actor_slack_id,
                decision.actor_role,
                (token_id or "")[:10],
                escape(str(detail))[:60],
            )
        self.console.print(table)

    def verdict_table(self) -> None:
        table = Table(title="Verdict", title_justify="left")
        for column in ("step", "expected", "happened", ""):
            table.add_column(column, overflow="fold")
        for verdict in self.verdicts:
            table.add_row(
                verdict.step,
                escape(verdict.expected),
                escape(verdict.happened),
                "[green]ok[/green]" if verdict.ok else "[red]FAILED[/red]",
            )
        self.console.print(table)

    # helpers -----------------------------------------------------------------------------------
    def _people(self) -> list[tuple[str, str]]:
        from bot.sandbox.seed import PEOPLE

        return [(p.slack_id, p.name) for p in PEOPLE]

    def _reminder_for(self, user: str, role: str) -> tuple[dict[str, Any], str]:
        return self._reminder_in(user, self.seeded.token(role))

    def _reminder_in(self, channel: str, token_id: str) -> tuple[dict[str, Any], str]:
        for message in reversed(self.slack.messages(channel)):
            for block in message.get("blocks") or []:
                if block.get("block_id", "").startswith("token:") and token_id[:10] in json.dumps(block):
                    return message, block["block_id"].removeprefix("token:")
        raise LookupError(f"no reminder about {token_id[:10]} in {channel}")

    def _click(self, user: str, message: dict[str, Any], action: str, reference: str) -> None:
        response = self.slack.click(
            self.slack_url,
            user,
            message["channel"],
            message["ts"],
            action,
            block_id=f"actions:{reference}",
            mode=self.mode,
        )
        if response.status != 200:
            raise RuntimeError(f"the bot answered HTTP {response.status}")

    def _wait(self, condition: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = condition()
            if result:
                return result
            time.sleep(0.05)
        raise TimeoutError(f"timed out waiting for {what}")

    def _decisions(self, status: str | None = None, actor: str | None = None) -> list[Decision]:
        with db.session_scope(self.engine) as session:
            query = select(Decision).order_by(Decision.id)
            if status:
                query = query.where(Decision.status == status)
            if actor:
                query = query.where(Decision.actor_slack_id == actor)
            return list(session.execute(query).scalars())

    def _leaks(self, value: str) -> list[str]:
        """Where a secret value shows up besides the secret store: Slack calls and every table."""
        found = []
        if any(value in json.dumps(call["args"], default=str) for call in self.slack.calls()):
            found.append("Slack")
        with self.engine.connect() as connection:
            for table in inspect(self.engine).get_table_names():
                rows = connection.execute(text(f'SELECT * FROM "{table}"')).all()  # noqa: S608 - our own names
                if any(value in str(row) for row in rows):
                    found.append(f"table {table}")
        return found

    def urls(self) -> dict[str, str]:
        slack_side = self.slack_url or f"Socket Mode, connected to ws://127.0.0.1:{self.slack.socket.port}"
        return {
            "bot (Slack requests)": slack_side,
            "bot health": self.server.url + "/healthz",
            "Slack Web API": self.slack.url,
            "Databricks prod": self.prod.url,
            "Databricks analytics": self.analytics.url,
        }


def as_shown(message: dict[str, Any]) -> str:
    """A stored Slack message as Slack shows it: its blocks (else its text), then its files."""
    from bot.slack.blocks import as_text

    blocks = message.get("blocks") or []
    if not blocks and message.get("text"):
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": message["text"]}}]
    lines = [as_text(blocks).rstrip("\n")] if blocks else []
    for file in message.get("files") or []:
        lines.append(f"[file] {file.get('title') or file.get('name')} ({file.get('name')})")
    return "\n".join(lines) + "\n"


def delivered(counts: dict[str, int]) -> str:
    """How many messages each owner got, in words: "6 owners got one message each"."""
    if not counts:
        return "no owner got a message"
    if set(counts.values()) == {1}:
        return f"{len(counts)} owner{'s' if len(counts) > 1 else ''} got one message each"
    return "owners got " + ", ".join(f"{name}: {n}" for name, n in sorted(counts.items()))


def run_demo(console: Console, keep: bool = False, *, http: bool = False) -> bool:
    """The demo end to end (Socket Mode, or HTTP mode with `http`); True when every step did what it
    should."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tokenbot-demo-") as tmp:
        workdir = Path(tmp) if not keep else Path(tempfile.mkdtemp(prefix="tokenbot-demo-"))
        with Demo(console, workdir, http=http) as demo:
            how = (
                "Slack's requests are really signed HTTP requests to the bot (HTTP mode)"
                if http
                else "the bot takes Slack's requests over a Socket Mode WebSocket, as `tokenbot serve` does"
            )
            console.print(
                Panel.fit(
                    "Two Databricks workspaces (prod, analytics), a Slack workspace and tokenbot, all on "
                    f"127.0.0.1.\n40 tokens, 12 people, 2 service principals. {how[0].upper() + how[1:]}; "
                    "every API call is real.",
                    title="tokenbot demo",
                )
            )
            ok = demo.run()
            elapsed = time.perf_counter() - started
            passed = sum(v.ok for v in demo.verdicts)
            console.print(
                f"\n[bold]{'All' if ok else 'Only'} {passed} of {len(demo.verdicts)} steps did what they "
                f"should[/bold] in {elapsed:.1f} s."
            )
            if keep:
                _keep_running(console, demo)
        return ok


def _keep_running(console: Console, demo: Demo) -> None:
    for name, url in demo.urls().items():
        console.print(f"  {name}: {url}")
    config = demo.workdir / "tokenbot.toml"
    console.print(
        f"\nThe database is {demo.settings.database_url} and the configuration {config}.\n"
        "Drive it from another shell, e.g.:\n"
        f"  TOKENBOT_CONFIG={config} TOKENBOT_DATABASE_URL={demo.settings.database_url} "
        f"DEMO_PROD_TOKEN={demo.prod.admin_token} DEMO_ANALYTICS_TOKEN={demo.analytics.admin_token} "
        f"SLACK_BOT_TOKEN={demo.slack.bot_token} TOKENBOT_SLACK_API_URL={demo.slack.url} "
        ".venv/bin/tokenbot report\n"
        "Press Ctrl-C to stop."
    )
    stop = threading.Event()
    try:
        while not stop.wait(1):
            pass
    except KeyboardInterrupt:
        console.print("stopping")
