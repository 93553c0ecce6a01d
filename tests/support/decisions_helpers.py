"""Helpers for the decisions tests: a synced sandbox workspace with people in it, and ways to see
what happened (decision rows, requests that changed something in Databricks, every stored value)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, select

from bot import clock, db
from bot.config import Settings
from bot.databricks.gateway import SdkWorkspaceGateway
from bot.domain.deadlines import DeadlineKind
from bot.models import Decision, Principal, Token
from bot.sandbox.databricks import DatabricksSandbox
from bot.sandbox.server import Request
from bot.services import decisions, inventory, report
from tests.support.workspaces import Org, sandbox_org

RUNNING = "AUTOSCOPE_STATE_RUNNING"
COMPLETED = "AUTOSCOPE_STATE_COMPLETED"

ALICE = decisions.Actor("UALICE")  # owns the user token t-alice
OPS = decisions.Actor("UOPS")  # the admin-assigned owner of the etl service principal
BOB = decisions.Actor("UBOB")  # owns nothing
ADMIN = decisions.Actor("UADMIN1", is_admin=True)
ADMIN2 = decisions.Actor("UADMIN2", is_admin=True)

SECRET_SCOPE, SECRET_KEY = "etl-secrets", "databricks-token"
BINDINGS_TOML = f"""
[[secret_bindings]]
workspace = "prod"
application_id = "app-etl"
scope = "{SECRET_SCOPE}"
key = "{SECRET_KEY}"
"""


@dataclass
class World:
    """The `prod` sandbox synced into a migrated database, with Slack ids on its owners."""

    org: Org
    engine: Engine
    settings: Settings

    @property
    def prod(self) -> DatabricksSandbox:
        return self.org["prod"]

    def gateway_for(self, name: str) -> SdkWorkspaceGateway:
        workspace = {w.name: w for w in self.settings.workspaces}[name]
        return SdkWorkspaceGateway(workspace, self.settings.databricks)

    def sync(self) -> None:
        [result] = inventory.sync_workspaces(
            engine=self.engine,
            workspaces=[(w.name, w.host) for w in self.settings.workspaces],
            gateway_for=self.gateway_for,
            policy=self.settings.policy,
        )
        assert result.ok, result.error

    # acting -----------------------------------------------------------------------------------
    def decide(self, function: Callable[..., decisions.Outcome], **arguments: Any) -> decisions.Outcome:
        """One service call in its own transaction, as a Slack handler makes it."""
        if "gateway_for" in function.__code__.co_varnames:
            arguments.setdefault("gateway_for", self.gateway_for)
        with db.session_scope(self.engine) as session:
            return function(session=session, **arguments)

    def at_once(self, calls: list[Callable[[], decisions.Outcome]]) -> list[decisions.Outcome]:
        """Run the calls in parallel threads, released together."""
        barrier = threading.Barrier(len(calls))
        outcomes: list[Any] = [None] * len(calls)

        def run(index: int) -> None:
            barrier.wait()
            try:
                outcomes[index] = calls[index]()
            except BaseException as error:  # shown by the test's assertion
                outcomes[index] = error

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        return outcomes

    # looking ----------------------------------------------------------------------------------
    def pk(self, token_id: str) -> int:
        return self.token(token_id).id

    def token(self, token_id: str) -> Token:
        with db.session_scope(self.engine) as session:
            return session.execute(select(Token).where(Token.token_id == token_id)).scalar_one()

    def principal(self, principal_id: str) -> Principal:
        with db.session_scope(self.engine) as session:
            query = select(Principal).where(Principal.principal_id == principal_id)
            return session.execute(query).scalar_one()

    def decisions(self, **where: Any) -> list[Decision]:
        with db.session_scope(self.engine) as session:
            rows = session.execute(select(Decision).order_by(Decision.id)).scalars().all()
        return [row for row in rows if all(getattr(row, k) == v for k, v in where.items())]

    def deadline(self, token_id: str, kind: DeadlineKind) -> decisions.DeadlineRef:
        """The token's deadline of that kind, as the reminders would show it."""
        with db.session_scope(self.engine) as session:
            [view] = report.token_views(
                session=session, policy=self.settings.policy, now=clock.now(), token_pks=[self.pk(token_id)]
            )
        [found] = [d for d in view.evaluation.deadlines if d.kind == kind]
        return decisions.DeadlineRef.of(found)

    def set_owner_slack(self, principal_id: str, *, slack_user_id=None, owner_slack_id=None) -> None:
        with db.session_scope(self.engine) as session:
            query = select(Principal).where(Principal.principal_id == principal_id)
            principal = session.execute(query).scalar_one()
            principal.slack_user_id = slack_user_id
            principal.owner_slack_id = owner_slack_id

    def stored_text(self) -> str:
        """Every value of every column of every table, as one text to search."""
        parts = []
        tables = MetaData()
        with self.engine.connect() as connection:
            tables.reflect(bind=connection)
            for table in tables.sorted_tables:
                for row in connection.execute(select(table)):
                    parts.extend(repr(value) for value in row)
        return "\n".join(parts)


def mutations(sandbox: DatabricksSandbox, path_part: str = "") -> list[Request]:
    """Requests that could have changed something in Databricks."""
    return [
        r
        for r in sandbox.requests
        if r.method in ("POST", "PATCH", "DELETE", "PUT")
        and ("/token-management/" in r.path or "/secrets/" in r.path)
        and path_part in r.path
    ]


def deletes_of(sandbox: DatabricksSandbox, token_id: str) -> list[Request]:
    return [r for r in sandbox.requests if r.method == "DELETE" and r.path.endswith(f"/tokens/{token_id}")]


def extend(world: World, actor: decisions.Actor, token_id: str, kind: DeadlineKind, days: int = 10,
           **extra: Any) -> decisions.Outcome:
    """The Extend button on the token's deadline of that kind (a rotation for t-etl's expiry)."""
    arguments = {
        "actor": actor,
        "token_pk": world.pk(token_id),
        "deadline": world.deadline(token_id, kind),
        "days": days,
        "reason": "quarter close",
        "policy": world.settings.policy,
        "secret_bindings": world.settings.secret_bindings,
    }
    return world.decide(decisions.extend, **{**arguments, **extra})


def days(n: float) -> timedelta:
    return timedelta(days=n)


@contextmanager
def make_world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str, retry_timeout_seconds: int = 3
) -> Iterator[World]:
    """Alice's user token, the etl service principal's bound token, and their owners in Slack."""
    with sandbox_org(
        tmp_path,
        monkeypatch,
        database_url,
        names=("prod",),
        extra_toml=BINDINGS_TOML,
        retry_timeout_seconds=retry_timeout_seconds,
    ) as org:
        engine = db.make_engine(database_url)
        db.migrate(engine)
        world = World(org=org, engine=engine, settings=org.settings())
        _seed(world)
        yield world
        engine.dispose()


ALICE_ID = "2000000000000001"
ETL_ID = "2000000000000002"


def _seed(world: World) -> None:
    prod, now = world.prod, clock.now()
    prod.add_user(id=ALICE_ID, user_name="alice@example.com", display_name="Alice")
    prod.add_service_principal(id=ETL_ID, application_id="app-etl", display_name="ETL")
    prod.add_token(
        token_id="t-alice",
        owner_id=ALICE_ID,
        comment="notebooks",
        created_at=now - days(10),
        expires_at=now + days(20),
        last_used_at=now - days(1),
        scopes=["all-apis"],
        inferred_scopes=["sql", "jobs"],
        autoscope_state=RUNNING,
    )
    prod.add_token(
        token_id="t-etl",
        owner_id=ETL_ID,
        comment="nightly etl",
        created_at=now - days(85),
        expires_at=now + days(5),
        last_used_at=now,
        scopes=["sql", "jobs"],
    )
    prod.add_secret_scope(SECRET_SCOPE)
    world.sync()
    world.set_owner_slack(ALICE_ID, slack_user_id=ALICE.slack_id)
    world.set_owner_slack(ETL_ID, owner_slack_id=OPS.slack_id)
