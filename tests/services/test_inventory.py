"""Syncing real (sandbox) workspaces through the real databricks-sdk: what is recorded, what is
detected, and how a failing workspace is isolated."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import select
from typer.testing import CliRunner

from bot import clock, db
from bot.cli.main import app
from bot.databricks.gateway import gateway_factory
from bot.models import Principal, Token, Workspace
from tests.support.workspaces import sandbox_org

runner = CliRunner()
RUNNING = "AUTOSCOPE_STATE_RUNNING"
COMPLETED = "AUTOSCOPE_STATE_COMPLETED"


@pytest.fixture
def org(tmp_path, monkeypatch, database_url):
    with sandbox_org(tmp_path, monkeypatch, database_url) as org:
        engine = db.make_engine(database_url)
        db.migrate(engine)
        org.engine = engine
        yield org
        engine.dispose()


def sync(*args: str):
    return runner.invoke(app, ["sync", *args])


def tokens(org, workspace=None) -> dict[str, Token]:
    with db.session_scope(org.engine) as session:
        query = select(Token)
        if workspace:
            query = query.where(Token.workspace == workspace)
        return {t.token_id: t for t in session.execute(query).scalars()}


def days_ago(days: float) -> datetime:
    return clock.now() - timedelta(days=days)


def test_first_sync_records_every_token_and_resolves_owners(org):
    prod = org["prod"]
    alice = prod.add_user(user_name="alice@example.com", display_name="Alice")
    etl = prod.add_service_principal(application_id="app-etl", display_name="ETL")
    prod.add_token(
        token_id="t-alice",
        owner_id=alice,
        comment="notebooks",
        created_at=days_ago(10),
        expires_at=days_ago(-80),
        last_used_at=days_ago(1),
        scopes=["sql"],
    )
    prod.add_token(
        token_id="t-etl",
        owner_id=etl,
        comment="etl job",
        created_at=days_ago(5),
        scopes=["all-apis"],
        autoscope_state=RUNNING,
    )
    org["dev"].add_token(token_id="t-dev", owner_id=org["dev"].add_user(user_name="bob@example.com"))
    org["prod"].set_conf("maxTokenLifetimeDays", "90")

    result = sync()

    assert result.exit_code == 0, result.output
    assert "prod: 2 tokens, 2 new, 0 gone, 0 changed" in result.output
    assert "dev: 1 tokens, 1 new" in result.output
    rows = tokens(org)
    assert set(rows) == {"t-alice", "t-etl", "t-dev"}
    alice_token = rows["t-alice"]
    assert alice_token.comment == "notebooks" and alice_token.scopes == ["sql"]
    assert alice_token.expires_at > clock.now() and alice_token.last_used_on.hour == 0
    assert rows["t-etl"].expires_at is None
    assert rows["t-etl"].observation_started_at == rows["t-etl"].created_at
    with db.session_scope(org.engine) as session:
        people = {
            p.principal_id: p
            for p in session.execute(select(Principal).where(Principal.workspace == "prod")).scalars()
        }
        workspace = session.get(Workspace, "prod")
    assert people[alice].kind == "user" and people[alice].email == "alice@example.com"
    assert people[etl].kind == "service_principal" and people[etl].application_id == "app-etl"
    assert workspace.status == "ok" and workspace.max_token_lifetime_days == 90 and workspace.token_count == 2


def test_revoked_expired_narrowed_and_changed_tokens_are_detected(org):
    prod = org["prod"]
    owner = prod.add_user(user_name="carol@example.com")
    prod.add_token(token_id="t-revoked", owner_id=owner, created_at=days_ago(30))
    prod.add_token(token_id="t-expired", owner_id=owner, created_at=days_ago(30), expires_at=days_ago(0.01))
    prod.add_token(
        token_id="t-narrowed",
        owner_id=owner,
        created_at=days_ago(31),
        scopes=["all-apis"],
        inferred_scopes=["sql", "jobs"],
        autoscope_state=RUNNING,
    )
    prod.add_token(token_id="t-used", owner_id=owner, created_at=days_ago(30), last_used_at=days_ago(5))
    assert sync().exit_code == 0

    prod.revoke_token("t-revoked")
    prod.revoke_token("t-expired")  # Databricks drops expired tokens from the listing
    prod.set_autoscope("t-narrowed", COMPLETED, scopes=["sql", "jobs"])
    prod.mark_used("t-used", clock.now())
    result = sync("--workspace", "prod", "--json")

    assert result.exit_code == 0, result.output
    [summary] = json.loads(result.stdout)
    assert (summary["workspace"], summary["gone"], summary["changed"], summary["narrowed"]) == (
        "prod",
        2,
        2,
        1,
    )
    assert summary["narrowed_tokens"] == ["t-narrowed"]
    rows = tokens(org, "prod")
    assert (rows["t-revoked"].gone_reason, rows["t-expired"].gone_reason) == ("revoked", "expired")
    assert rows["t-revoked"].gone_at is not None  # kept, never deleted
    narrowed = rows["t-narrowed"]
    assert narrowed.scopes == ["sql", "jobs"] and narrowed.previous_scopes == ["all-apis"]
    assert narrowed.narrowed_at is not None and narrowed.autoscope_state == COMPLETED
    assert rows["t-used"].last_used_on.date() == clock.now().date()


def test_a_second_sync_with_nothing_changed_changes_nothing_and_asks_scim_nothing(org):
    prod = org["prod"]
    prod.add_token(token_id="t1", owner_id=prod.add_user(user_name="dan@example.com"), created_at=days_ago(3))
    assert sync("-w", "prod").exit_code == 0
    before = len(prod.requests)

    result = sync("-w", "prod")

    assert "prod: 1 tokens, 0 new, 0 gone, 0 changed" in result.output
    scim = [r for r in prod.requests[before:] if "/scim/" in r.path]
    assert scim == []


def test_a_new_owner_is_resolved_once(org):
    prod = org["prod"]
    prod.add_token(token_id="t1", owner_id=prod.add_user(user_name="erin@example.com"))
    assert sync("-w", "prod").exit_code == 0
    newcomer = prod.add_user(user_name="frank@example.com")
    prod.add_token(token_id="t2", owner_id=newcomer)
    prod.add_token(token_id="t3", owner_id=newcomer)
    before = len(prod.requests)

    assert "1 new" not in sync("-w", "prod").output  # two new tokens

    scim = [r.path for r in prod.requests[before:] if "/scim/" in r.path]
    assert scim == [f"/api/2.0/preview/scim/v2/Users/{newcomer}"]


def test_an_unknown_owner_is_recorded_as_unresolved(org):
    prod = org["prod"]
    prod.add_token(token_id="t-orphan", owner_id="999999")
    assert sync("-w", "prod").exit_code == 0
    with db.session_scope(org.engine) as session:
        principal = session.execute(select(Principal).where(Principal.principal_id == "999999")).scalar_one()
    assert principal.kind is None and principal.resolved_at is not None


def test_a_workspace_that_is_down_keeps_its_tokens_and_the_others_still_sync(org):
    prod, dev = org["prod"], org["dev"]
    prod.add_token(token_id="t-prod", owner_id=prod.add_user(user_name="gina@example.com"))
    dev.add_token(token_id="t-dev", owner_id=dev.add_user(user_name="hal@example.com"))
    assert sync().exit_code == 0
    dev.down()
    prod.add_token(token_id="t-prod-2", owner_id=prod.add_user(user_name="ivy@example.com"))

    result = sync()

    assert result.exit_code == 1
    assert "prod: 2 tokens, 1 new" in result.output
    assert "dev: FAILED" in result.output
    dev_rows = tokens(org, "dev")
    assert dev_rows["t-dev"].gone_at is None
    with db.session_scope(org.engine) as session:
        workspace = session.get(Workspace, "dev")
    assert workspace.status == "stale" and workspace.last_error
    dev.up()
    assert sync("-w", "dev").exit_code == 0


def test_a_non_admin_credential_gets_a_message_naming_the_permission(org, monkeypatch):
    prod = org["prod"]
    prod.add_non_admin_token("dapi-not-an-admin")
    monkeypatch.setenv("PROD_DATABRICKS_TOKEN", "dapi-not-an-admin")

    result = sync("-w", "prod")

    assert result.exit_code == 1
    assert "permission denied" in result.output and "workspace admin" in result.output
    assert "dapi-not-an-admin" not in result.output


def test_a_wrong_credential_says_authentication_failed(org, monkeypatch):
    monkeypatch.setenv("PROD_DATABRICKS_TOKEN", "dapi-wrong")
    result = sync("-w", "prod")
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert "authentication failed (Invalid access token." in output
    assert "check the workspace's credentials" in output and "workspace admin" not in output
    assert "dapi-wrong" not in result.output


def test_an_expired_credential_says_authentication_failed_not_admin(org, monkeypatch):
    prod = org["prod"]
    created = requests.post(
        f"{prod.url}/api/2.0/token/create",
        json={"lifetime_seconds": 1, "comment": "short-lived admin token"},
        headers={"Authorization": f"Bearer {prod.admin_token}"},
        timeout=10,
    ).json()
    expired = created["token_value"]
    monkeypatch.setenv("PROD_DATABRICKS_TOKEN", expired)
    time.sleep(1.5)  # the token's lifetime runs out

    result = sync("-w", "prod")

    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert "authentication failed" in output and "check the workspace's credentials" in output
    assert "workspace admin" not in output and expired not in output


def test_an_oauth_workspace_gets_a_new_access_token_when_the_old_one_runs_out(org, monkeypatch):
    prod = org["prod"]
    prod.add_service_principal(application_id="app-tokenbot", display_name="tokenbot")
    prod.enable_oauth("app-tokenbot", "s3cret")
    prod.oauth_token_lifetime = 45  # the SDK renews 40 s early: this token serves 5 s
    monkeypatch.setenv("PROD_CLIENT_ID", "app-tokenbot")
    monkeypatch.setenv("PROD_CLIENT_SECRET", "s3cret")
    config = org.config_path.read_text().replace(
        'token_env = "PROD_DATABRICKS_TOKEN"', 'client_id_env = "PROD_CLIENT_ID"\nclient_secret_env = "PROD_CLIENT_SECRET"'
    )
    org.config_path.write_text(config)
    settings = org.settings()
    gateway = gateway_factory(settings.workspaces, settings.databricks)("prod")

    first = gateway.fetch_inventory(known_principals=frozenset())
    time.sleep(6)
    second = gateway.fetch_inventory(known_principals=frozenset())

    assert first == second
    grants = [r for r in prod.requests if r.path == "/oidc/v1/token"]
    assert len(grants) == 2 and all(r.form["grant_type"] == "client_credentials" for r in grants)


def test_an_unknown_autoscope_state_is_kept_as_text(org):
    prod = org["prod"]
    prod.add_token(
        token_id="t-new",
        owner_id=prod.add_user(user_name="jo@example.com"),
        autoscope_state="AUTOSCOPE_STATE_SOMETHING_NEW",
    )
    assert sync("-w", "prod").exit_code == 0
    assert tokens(org)["t-new"].autoscope_state == "AUTOSCOPE_STATE_SOMETHING_NEW"


def test_observation_start_uses_the_rollout_date_and_is_kept(tmp_path, monkeypatch, database_url):
    with sandbox_org(
        tmp_path,
        monkeypatch,
        database_url,
        names=("prod",),
        extra_toml="[policy]\nautoscope_rollout_date = 2026-06-15\n",
    ) as org:
        assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
        prod = org["prod"]
        owner = prod.add_user(user_name="kim@example.com")
        prod.add_token(
            token_id="t-old",
            owner_id=owner,
            created_at=datetime(2025, 1, 1, tzinfo=UTC),
            autoscope_state=RUNNING,
        )
        prod.add_token(
            token_id="t-young",
            owner_id=owner,
            created_at=datetime(2026, 9, 1, tzinfo=UTC),
            autoscope_state=RUNNING,
        )
        assert sync().exit_code == 0
        prod.set_autoscope("t-old", COMPLETED)
        assert sync().exit_code == 0
        engine = db.make_engine(database_url)
        with db.session_scope(engine) as session:
            rows = {t.token_id: t for t in session.execute(select(Token)).scalars()}
        engine.dispose()
    assert rows["t-old"].observation_started_at == datetime(2026, 6, 15, tzinfo=UTC)
    assert rows["t-young"].observation_started_at == datetime(2026, 9, 1, tzinfo=UTC)


def test_unknown_workspace_name_is_a_usage_error(org):
    result = sync("-w", "staging")
    assert result.exit_code == 2
    assert "unknown workspace staging; configured: prod, dev" in result.output


def test_sync_without_migrations_says_to_upgrade(tmp_path, monkeypatch):
    with sandbox_org(tmp_path, monkeypatch, f"sqlite:///{tmp_path / 'fresh.db'}", names=("prod",)):
        result = sync()
    assert result.exit_code == 2
    assert "tokenbot db upgrade" in result.output


def test_a_token_with_a_very_long_comment_is_synced_whole(org):
    long_comment = "nightly export for the finance team; " * 100  # 3,700 characters
    org["prod"].add_token(token_id="t-long", owner_id=org["prod"].add_user(user_name="carol@example.com"),
                          comment=long_comment)

    result = sync("--workspace", "prod")

    assert result.exit_code == 0, result.output
    assert tokens(org, "prod")["t-long"].comment == long_comment
