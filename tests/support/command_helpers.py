"""Test helpers for `/tokens` and the App Home: a synced world with owners in Slack, the bot
behind uvicorn, and ways to type a command and read the answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot import clock, db
from bot.models import Decision, Principal, Token
from tests.support.bot_server import running_bot, wait_for
from tests.support.slack_helpers import ADMIN_USER, SLACK_TOML
from tests.support.world import close_world, make_world, observed_token

OWNER = "U0OWEN"  # owns tok-observed and tok-idle in prod
EVE = "U0EVE"  # in Slack, owns nothing, not an admin
REAL = "U0REAL"  # someone an admin can make an owner
ADMIN = ADMIN_USER
SP_TOKEN = "sp-etl-token-0001"
SHARED_PREFIX = "shared"

# tokenbot's own inactivity rule on (60 days), so `extend` has a deadline to put off.
POLICY = '[policy]\norg_max_inactive_days = 60\norg_max_lifetime_days = 0\nquiet_hours = "off"\n'


def build_world(
    tmp_path, monkeypatch, database_url, extra_owner_tokens: int = 0, remind: bool = True, slack_toml=SLACK_TOML
):
    """prod: Owen's observed token (enforcement in 5 days) and idle token (tokenbot's 60-day rule
    in 5 days), an unowned service principal's token that can mint tokens, and `shared-…` ids in
    both workspaces; the owners' Slack ids found by a reminder run, as in production (unless
    `remind` is False: right after the first sync, nobody looked up yet)."""
    world, stack = make_world(tmp_path, monkeypatch, database_url, policy=POLICY, slack_toml=slack_toml)
    slack = world.slack
    slack.add_user(id=OWNER, email="owen@example.com", name="Owen", tz="Europe/Berlin")
    slack.add_user(id=EVE, email="eve@example.com", name="Eve")
    slack.add_user(id=REAL, email="real@example.com", name="Real Owner")
    prod, dev = world.org["prod"], world.org["dev"]
    owner = prod.add_user(user_name="owen@example.com", display_name="Owen")
    observed_token(prod, owner, "tok-observed", 5)
    prod.add_token(
        token_id="tok-idle",
        owner_id=owner,
        comment="old report",
        created_at=clock.now() - timedelta(days=300),
        last_used_at=clock.now() - timedelta(days=55),
        scopes=["sql"],
    )
    etl = prod.add_service_principal(application_id="app-etl", display_name="etl")
    prod.add_token(
        token_id=SP_TOKEN,
        owner_id=etl,
        comment="nightly etl",
        created_at=clock.now() - timedelta(days=20),
        last_used_at=clock.now(),
        scopes=["authentication", "sql"],
    )
    prod.add_token(
        token_id=f"{SHARED_PREFIX}-prod-1",
        owner_id=owner,
        comment="shared one",
        scopes=["sql"],
        last_used_at=clock.now(),
    )
    dev_owner = dev.add_user(user_name="owen@example.com")
    dev.add_token(
        token_id=f"{SHARED_PREFIX}-dev-1",
        owner_id=dev_owner,
        comment="shared two",
        scopes=["sql"],
        last_used_at=clock.now(),
    )
    for index in range(extra_owner_tokens):
        observed_token(prod, owner, f"tok-many-{index:02d}", 3 + index % 20)
    world.sync()
    if remind:
        world.remind()
    return world, stack


@contextmanager
def served(tmp_path, monkeypatch, database_url, mode: str = "http", **options) -> Iterator[Any]:
    """`build_world(**options)` with the bot serving it (`world.server`) in `mode` ("http" or
    "socket"), torn down after."""
    world, stack = build_world(tmp_path, monkeypatch, database_url, **options)
    server = running_bot(world.settings, world.engine, mode)
    world.server = server.__enter__()
    try:
        yield world
    finally:
        server.__exit__(None, None, None)
        close_world(world, stack)


class Typist:
    """Types `/tokens …` as a Slack user and reads the answers the bot posts at the response_url."""

    def __init__(self, world):
        self.world = world

    @property
    def slack(self):
        return self.world.slack

    @property
    def url(self) -> str | None:
        return self.world.server.slack_url

    @property
    def mode(self) -> str:
        return self.world.server.mode

    def ask(self, text: str, user: str = ADMIN, answers: int = 1) -> list[dict[str, Any]]:
        """The bodies of the `answers` posts the bot makes to this command's response_url."""
        before = len(self.slack.response_url_posts())
        response = self.slack.command(self.url, user, text, mode=self.mode)
        assert response.status == 200, response.body
        wait_for(
            lambda: len(self.slack.response_url_posts()) >= before + answers,
            timeout=20,
            what=f"the answer to /tokens {text!r}",
        )
        return [post["body"] for post in self.slack.response_url_posts()[before:]]

    def answer(self, text: str, user: str = ADMIN) -> dict[str, Any]:
        [body] = self.ask(text, user)
        return body

    def ephemeral(self, user: str) -> dict[str, Any]:
        """The answer as the user sees it (with the ts and channel a click needs)."""
        return self.slack.ephemerals(user)[-1]


def everything(body: dict[str, Any]) -> str:
    """An answer's fallback text and blocks, as one searchable text."""
    return body.get("text", "") + "\n" + json.dumps(body.get("blocks", []), ensure_ascii=False)


def action_values(body: dict[str, Any], action_id: str) -> list[str]:
    return [
        element.get("value")
        for block in body.get("blocks", [])
        if block.get("type") == "actions"
        for element in block.get("elements", [])
        if element.get("action_id") == action_id
    ]


def decisions(world, action: str | None = None) -> list[Decision]:
    """The decisions recorded (a claim whose Databricks call is still under way is not, yet)."""
    with db.session_scope(world.engine) as session:
        query = select(Decision).where(Decision.status != "in_progress").order_by(Decision.id)
        if action:
            query = query.where(Decision.action == action)
        return list(session.execute(query).scalars())


def token(world, token_id: str) -> Token:
    with db.session_scope(world.engine) as session:
        return session.execute(select(Token).where(Token.token_id == token_id)).scalar_one()


def principal_of(world, token_id: str) -> Principal:
    found = token(world, token_id)
    with db.session_scope(world.engine) as session:
        return session.execute(
            select(Principal).where(
                Principal.workspace == found.workspace, Principal.principal_id == found.owner_id
            )
        ).scalar_one()


def databricks_mutations(world) -> list:
    return [
        request
        for sandbox in world.org.sandboxes.values()
        for request in sandbox.requests
        if request.method in ("POST", "PATCH", "DELETE", "PUT")
        and ("/token-management/" in request.path or "/secrets/" in request.path or "/token/" in request.path)
    ]
