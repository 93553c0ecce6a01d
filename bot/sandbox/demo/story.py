"""The demo's story: twelve steps that drive the bot the way Slack would (envelopes over the
socket, or really signed HTTP requests, from the Slack sandbox's driver) and run the scheduled jobs
by hand, each checked against what it should have done; and `run_demo`, the whole of it."""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from sqlalchemy import select

from bot import clock, db
from bot.models import Exemption
from bot.sandbox.demo.consumers import ConsumersStory
from bot.sandbox.demo.stage import DemoStage
from bot.sandbox.demo.transcript import Verdict, as_shown, delivered, print_decision_log, print_verdicts
from bot.sandbox.seed import ADMIN, ADMIN_CHANNEL, DIGEST_CHANNEL, SECRET_KEY, SECRET_SCOPE


class Demo(DemoStage, ConsumersStory):
    """Sandboxes, seed, bot; then the story, step by step."""

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
            ("Who uses a token, and one used from a new network", self.consumers_and_misuse),
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
        print_decision_log(self.console, self.engine)
        print_verdicts(self.console, self.verdicts)
        return all(v.ok for v in self.verdicts)

    def sync(self) -> Verdict:
        from bot.services import audit_read
        from bot.services.inventory import sync_line

        results = self.deps.run_sync()
        for result in results:
            self.console.print("  " + escape(sync_line(result)), highlight=False)
        refreshed = audit_read.refresh_all(
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
        from bot.slack.blocks import as_text

        message, reference = self._reminder_for("U0PRIYA", "rare_job")
        named = "jobs.runNow` x1" in as_text(message["blocks"])  # shadow enforcement's exact call
        self.console.print(f"  Priya's reminder names the call narrowing would deny (jobs.runNow): {named}")
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
            "the reminder names jobs.runNow; PATCH with sql + jobs",
            f"call named: {named}; pre-selected {preselected}; PATCH scopes {scopes}",
            named and scopes == ["jobs", "sql"] and "jobs" in preselected,
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
        # The secret is written before the rotation is recorded (claim, call, record): the job
        # revokes the old token of a recorded rotation only.
        self._wait(
            lambda: [d for d in self._decisions(status="applied", actor=ADMIN) if d.action == "rotate"],
            "the rotation recorded",
        )
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
