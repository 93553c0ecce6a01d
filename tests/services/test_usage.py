"""Observed usage: the audit log read through the Statement Execution API of the Databricks
sandbox (real databricks-sdk over HTTP), attributed to tokens and owners, and the `rare_api`
finding it gives: in the report, in the reminder, and pre-selected in the Confirm scopes modal."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, time, timedelta

import pytest
from databricks.sdk import WorkspaceClient
from sqlalchemy import select
from typer.testing import CliRunner

from bot import clock, db
from bot.cli.main import app
from bot.databricks.gateway import gateway_factory
from bot.databricks.records import GatewayError
from bot.domain.findings import Finding
from bot.models import ApiUsage
from bot.services import report, usage
from bot.slack import blocks
from tests.support.autoscope_helpers import (
    EMAIL,
    OWNER,
    QUARTERLY,
    WAREHOUSE,
    call,
    quarterly_job,
    quarterly_world,
    refresh_usage,
    token_use,
    with_audit_warehouse,
)
from tests.support.bot_server import running_bot, wait_for
from tests.support.world import close_world


@pytest.fixture
def world(tmp_path, monkeypatch, database_url):
    world, stack = quarterly_world(tmp_path, monkeypatch, database_url)
    yield world
    close_world(world, stack)


def refresh(world, **options) -> dict[str, usage.UsageResult]:
    return refresh_usage(world, **options)


def usage_rows(world) -> list[ApiUsage]:
    with db.session_scope(world.engine) as session:
        query = select(ApiUsage).order_by(ApiUsage.token_id, ApiUsage.service_name)
        return list(session.execute(query).scalars())


def prod_client(world) -> WorkspaceClient:
    prod = world.org["prod"]
    return WorkspaceClient(host=prod.url, token=prod.admin_token)


def view_of(world, token_id=QUARTERLY):
    with db.session_scope(world.engine) as session:
        views = report.token_views(session=session, policy=world.settings.policy, now=clock.now())
    return next(v for v in views if v.token_id == token_id)


def statements(world, name="prod"):
    return [
        r
        for r in world.org[name].requests
        if r.method == "POST" and r.path.rstrip("/") == "/api/2.0/sql/statements"
    ]


def eighty_days_ago() -> str:
    return (clock.now() - timedelta(days=80)).date().isoformat()


# ---------------------------------------------------------------------------------------------
# the story


def test_a_quarterly_jobs_call_is_rare_api_in_the_report_the_reminder_and_the_modal(world):
    world.org["prod"].add_audit_rows(quarterly_job(clock.now(), "tok-quarterly", EMAIL))

    results = refresh(world)

    assert results["prod"].ok and results["dev"].skipped
    by_service = {row.service_name: row for row in usage_rows(world)}
    assert set(by_service) == {"databrickssql", "jobs"}
    assert (by_service["jobs"].token_id, by_service["jobs"].scope) == ("tok-quarterly", "jobs")
    assert (by_service["jobs"].calls, by_service["databrickssql"].calls) == (1, 90)
    assert not any(row.approximate for row in by_service.values())  # tied through the login sessions

    [rare] = [f for f in view_of(world).evaluation.findings if f.code is Finding.RARE_API]
    assert rare.detail == f"jobs.runNow x1, last {eighty_days_ago()}: needs jobs, which auto-scoping will not keep"

    world.remind()
    [message] = world.slack.messages(OWNER)
    text = blocks.as_text(message["blocks"])
    assert f"Narrowing would deny* (auto-scoping keeps `sql`; audit log, 180 days):\n`jobs.runNow` x1, last {eighty_days_ago()}: needs `jobs`" in text

    with running_bot(world.settings, world.engine) as server:
        reference = next(
            b["block_id"].removeprefix("actions:")
            for b in message["blocks"]
            if b.get("block_id", "").startswith("actions:")
        )
        world.slack.click(
            server.slack_url,
            OWNER,
            message["channel"],
            message["ts"],
            "token_confirm_scopes",
            block_id=f"actions:{reference}",
        )
        modal = wait_for(lambda: world.slack.views(OWNER, open_only=True), what="the modal")[-1]
    chooser = next(b for b in modal["blocks"] if b.get("block_id") == "scopes")
    assert [o["value"] for o in chooser["element"]["initial_options"]] == ["sql", "jobs"]


def test_a_scope_seen_within_the_observation_window_is_not_rare(world):
    rows = quarterly_job(clock.now(), "tok-quarterly", EMAIL)
    rows += token_use(clock.now() - timedelta(days=3), "tok-quarterly", EMAIL, "jobs", "runNow")
    world.org["prod"].add_audit_rows(rows)

    refresh(world)

    assert Finding.RARE_API not in view_of(world).evaluation.finding_codes


def test_events_outside_a_login_session_go_to_the_owner_marked_approximate(world):
    now = clock.now()
    world.org["prod"].add_audit_rows(
        [
            call(now - timedelta(days=60), "clusters", "create", EMAIL),  # the web UI, or another token
            call(now - timedelta(days=2), "sparkUiProxy", "getLogs", EMAIL),  # no scope known for it
            call(now - timedelta(days=9), "jobs", "runNow", "stranger@example.com"),  # owns no token
        ]
    )

    result = refresh(world)["prod"]

    rows = {row.service_name: row for row in usage_rows(world)}
    assert (rows["clusters"].token_id, rows["clusters"].approximate) == ("", True)
    assert rows["clusters"].principal_id == world.owner_id
    assert (rows["sparkUiProxy"].scope, result.unmapped_services) == (None, {"sparkUiProxy": 1})
    assert result.unmatched_calls == 1 and "jobs" not in rows
    codes = [f.detail for f in view_of(world).evaluation.findings if f.code is Finding.RARE_API]
    assert codes == [
        f"clusters.create x1, last {(now - timedelta(days=60)).date()} (by the owner, maybe with another "
        "token): needs clusters, which auto-scoping will not keep"
    ]


def test_a_second_refresh_replaces_the_counts_instead_of_adding_them(world):
    world.org["prod"].add_audit_rows(quarterly_job(clock.now(), "tok-quarterly", EMAIL))
    refresh(world)
    refresh(world)

    by_service = {row.service_name: row for row in usage_rows(world)}
    assert (by_service["databrickssql"].calls, len(by_service)) == (90, 2)


# ---------------------------------------------------------------------------------------------
# the statements


def test_the_statements_are_parameterised_never_formatted(world):
    world.org["prod"].add_audit_rows(quarterly_job(clock.now(), "tok-quarterly", EMAIL, days=3))
    since = clock.now() - timedelta(days=180)

    refresh(world)

    sent = statements(world)
    assert len(sent) == 1
    for request in sent:
        body = request.json
        assert {p["name"] for p in body["parameters"]} == {"workspace_id", "since"}
        assert ":since" in body["statement"] and ":workspace_id" in body["statement"]
        assert since.date().isoformat() not in body["statement"]
        assert not re.search(rf"\b{world.org['prod'].workspace_id}\b", body["statement"])


def test_chunked_results_are_followed_to_the_end(world):
    prod = world.org["prod"]
    prod.chunk_rows = 7
    rows = quarterly_job(clock.now(), "tok-quarterly", EMAIL)
    prod.add_audit_rows(rows)

    result = refresh(world)["prod"]

    # One group per day, service and action: each day's logins and SQL calls, and the one jobs
    # run; the first chunk of 7 comes with the statement's answer, the others are read by index.
    days = {row["event_time"].date() for row in rows}
    groups = 2 * len(days) + 1
    assert result.audit_groups == groups
    chunk_reads = [r for r in prod.requests if "/result/chunks/" in r.path]
    assert len(chunk_reads) == -(-groups // 7) - 1
    by_service = {row.service_name: row for row in usage_rows(world)}
    assert (by_service["databrickssql"].calls, by_service["jobs"].calls) == (90, 1)


def busy_month(now: datetime) -> list[dict]:
    """30 days of a token used 40 times a day, each use its own session, and the owner's web UI."""
    noon = datetime.combine(now.date(), time(12), tzinfo=UTC)
    rows = []
    for day in range(1, 31):
        for use in range(40):
            when = noon - timedelta(days=day, minutes=use)
            rows += token_use(when, "tok-quarterly", EMAIL, "databrickssql", "executeStatement")
        rows += [call(noon - timedelta(days=day, hours=2, minutes=n), "clusters", "list", EMAIL) for n in range(10)]
    return rows


def test_a_busy_audit_log_is_read_in_daily_groups_under_the_inline_limit(world):
    prod = world.org["prod"]
    prod.inline_byte_limit, prod.chunk_rows = 30_000, 20
    prod.add_audit_rows(busy_month(clock.now()))
    per_session = prod_client(world).statement_execution.execute_statement(
        statement="SELECT user_identity.email, session_id, service_name, action_name, count(*) "
        "FROM system.access.audit GROUP BY user_identity.email, session_id, service_name, action_name",
        warehouse_id=WAREHOUSE,
        wait_timeout="30s",
    )

    result = refresh(world)["prod"]

    assert per_session.status.error.message.startswith("Inline byte limit exceeded")  # 2,400 sessions
    assert result.ok, result.error
    assert result.audit_groups == 30 * 3  # per day: logins, SQL calls, UI calls
    assert len([r for r in prod.requests if "/result/chunks/" in r.path]) == 90 // 20
    rows = {row.service_name: row for row in usage_rows(world)}
    assert (rows["databrickssql"].token_id, rows["databrickssql"].calls) == ("tok-quarterly", 1200)
    assert (rows["clusters"].token_id, rows["clusters"].approximate, rows["clusters"].calls) == ("", True, 300)


def test_more_groups_than_the_bound_are_refused_not_cut_short(world):
    world.org["prod"].add_audit_rows(quarterly_job(clock.now(), "tok-quarterly", EMAIL, days=10))
    gateway = gateway_factory(world.settings.workspaces, world.settings.databricks)("prod")
    since = clock.now() - timedelta(days=30)

    assert len(gateway.audit_usage(WAREHOUSE, since, max_groups=20).calls) == 20
    with pytest.raises(GatewayError, match=r"more than 19 groups .* shorten policy.usage_lookback_days"):
        gateway.audit_usage(WAREHOUSE, since, max_groups=19)
    [statement] = [r.json["statement"] for r in statements(world)][-1:]
    assert statement.endswith("LIMIT 20")


def test_daily_groups_over_the_inline_limit_are_a_clear_error(world):
    prod = world.org["prod"]
    prod.inline_byte_limit = 2_000
    prod.add_audit_rows(busy_month(clock.now()))

    result = refresh(world)["prod"]

    assert not result.ok
    assert "Inline byte limit exceeded" in result.error and "usage_lookback_days" in result.error
    assert usage_rows(world) == []


def test_a_stopped_warehouse_is_started_and_waited_for(world):
    prod = world.org["prod"]
    prod.add_warehouse(WAREHOUSE, state="STOPPED")
    prod.add_audit_rows(quarterly_job(clock.now(), "tok-quarterly", EMAIL, days=5))

    result = refresh(world)["prod"]

    assert result.ok, result.error
    polls = [r for r in prod.requests if r.method == "GET" and "/api/2.0/sql/statements/" in r.path]
    assert polls and result.rows == 2


# ---------------------------------------------------------------------------------------------
# failures, one workspace at a time


def test_a_missing_warehouse_fails_its_workspace_clearly_and_the_others_still_refresh(world, caplog):
    with_audit_warehouse(world.org.config_path, "dev", "wh-dev")
    world.org["dev"].add_warehouse("wh-dev")
    prod_config = world.org.config_path.read_text().replace(f'"{WAREHOUSE}"', '"wh-gone"')
    world.org.config_path.write_text(prod_config)

    with caplog.at_level(logging.ERROR, logger="bot.services.usage"):
        results = refresh(world)

    assert results["dev"].ok and not results["prod"].ok
    error = results["prod"].error
    assert "SQL warehouse wh-gone" in error and "does not exist" in error and "audit_warehouse_id" in error
    assert any("wh-gone" in record.getMessage() for record in caplog.records)


def test_a_failed_statement_is_a_clear_error(world):
    failed = {
        "statement_id": "01f0-failed",
        "status": {
            "state": "FAILED",
            "error": {
                "error_code": "BAD_REQUEST",
                "message": "[INSUFFICIENT_PERMISSIONS] no SELECT on system.access.audit",
            },
        },
    }
    world.org["prod"].fail("POST", r"/api/2\.0/sql/statements/?$", 200, body=failed)

    result = refresh(world)["prod"]

    assert not result.ok
    assert "ended FAILED" in result.error and "INSUFFICIENT_PERMISSIONS" in result.error
    assert usage_rows(world) == []


def test_a_warehouse_that_never_answers_is_given_up_within_the_bound(world):
    prod = world.org["prod"]
    prod.add_warehouse(WAREHOUSE, state="STOPPED")
    pending = {"statement_id": "x", "status": {"state": "PENDING"}}
    prod.fail("GET", r"/api/2\.0/sql/statements/[^/]+$", 200, times=1000, body=pending)

    started = datetime.now(UTC)
    result = refresh(world, max_wait_seconds=1.0)["prod"]

    assert not result.ok and "no result within 1 s" in result.error
    assert datetime.now(UTC) - started < timedelta(seconds=10)
    assert [r for r in prod.requests if r.path.endswith("/cancel")]


def test_usage_refresh_command_reports_each_workspace_and_exits_1_on_a_failure(world):
    world.org["prod"].add_audit_rows(quarterly_job(clock.now(), "tok-quarterly", EMAIL, days=3))
    runner = CliRunner()

    good = runner.invoke(app, ["usage", "refresh"])
    world.org["prod"].fail("POST", r"/api/2\.0/sql/statements/?$", 500)
    bad = runner.invoke(app, ["usage", "refresh", "--json"])

    assert good.exit_code == 0, good.output
    output = " ".join(good.output.split())
    assert "prod: 2 usage row(s)" in output and "2 tied to a token" in output
    assert "dev: skipped (no audit_warehouse_id)" in output
    assert bad.exit_code == 1
    [prod, dev] = json.loads(bad.stdout)
    assert (prod["ok"], dev["skipped"]) == (False, True)


def test_usage_refresh_without_any_warehouse_is_a_usage_error(world):
    world.org.config_path.write_text(
        world.org.config_path.read_text().replace(f'audit_warehouse_id = "{WAREHOUSE}"\n', "")
    )
    result = CliRunner().invoke(app, ["usage", "refresh"])
    assert result.exit_code == 2
    assert "audit_warehouse_id" in result.output
