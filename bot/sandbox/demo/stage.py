"""The demo's stage: two Databricks sandboxes and a Slack sandbox, seeded with the demo's
organisation, a configuration and a database in a work directory, and the bot itself running in
this process (in Socket Mode, or in HTTP mode behind a real port); with the helpers the story uses
to find reminders, click, wait and read the database."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlalchemy import inspect, select, text

from bot import clock, db
from bot.config import Settings, load_settings
from bot.models import Decision
from bot.sandbox.databricks import DatabricksSandbox
from bot.sandbox.demo.transcript import Verdict
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


class DemoStage:
    """Sandboxes, seed, bot: a context manager that sets them up and takes them down."""

    def __init__(self, console: Console, workdir: Path, *, http: bool = False) -> None:
        self.console = console
        self.workdir = workdir
        self.mode = "http" if http else "socket"
        self.verdicts: list[Verdict] = []
        self._stack = ExitStack()

    # setting the stage ---------------------------------------------------------------------------
    def __enter__(self) -> DemoStage:
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
autoscope_rollout_date = {(self.now - timedelta(days=25)).date().isoformat()}
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

    def urls(self) -> dict[str, str]:
        slack_side = self.slack_url or f"Socket Mode, connected to ws://127.0.0.1:{self.slack.socket.port}"
        return {
            "bot (Slack requests)": slack_side,
            "bot health": self.server.url + "/healthz",
            "Slack Web API": self.slack.url,
            "Databricks prod": self.prod.url,
            "Databricks analytics": self.analytics.url,
        }

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
