"""Shadow enforcement end to end: the audit log read through the Databricks sandbox's Statement
Execution API (real databricks-sdk), each call of a token in observation replayed against the scopes
auto-scoping keeps, and the calls it would deny named in the reminder, `/tokens show`, the JSON
report and the Confirm scopes modal; missing, failed or late audit data said, never guessed."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bot import clock, db
from bot.cli.main import app
from bot.domain.findings import Finding
from bot.models import ApiCall, AuditRead, Decision
from bot.services import report
from bot.slack import blocks
from tests.support.autoscope_helpers import (
    EMAIL,
    OWNER,
    QUARTERLY,
    call,
    quarterly_job,
    quarterly_world,
    refresh_usage,
    token_use,
)
from tests.support.bot_server import running_bot, wait_for
from tests.support.world import close_world


@pytest.fixture
def world(tmp_path, monkeypatch, database_url):
    world, stack = quarterly_world(tmp_path, monkeypatch, database_url)
    yield world
    close_world(world, stack)


def days_ago(days: int) -> str:
    return (clock.now() - timedelta(days=days)).date().isoformat()


def quarter_close(world, runs: int = 3) -> None:
    """Daily SQL through the token for 90 days, `jobs.runNow` `runs` times (the last 80 days ago) and
    `jobs.get` once 95 days ago: everything auto-scoping's 25 days missed."""
    now = clock.now()
    rows = quarterly_job(now, QUARTERLY, EMAIL)  # runNow 80 days ago
    for extra in range(1, runs):
        rows += token_use(now - timedelta(days=80 + 7 * extra), QUARTERLY, EMAIL, "jobs", "runNow")
    rows += token_use(now - timedelta(days=95), QUARTERLY, EMAIL, "jobs", "get")
    world.org["prod"].add_audit_rows(rows)


def decisions(world) -> list[Decision]:
    with db.session_scope(world.engine) as session:
        return list(session.execute(select(Decision).order_by(Decision.id)).scalars())


def view_of(world, token_id: str = QUARTERLY) -> report.TokenView:
    with db.session_scope(world.engine) as session:
        views = report.token_views(session=session, policy=world.settings.policy, now=clock.now())
    return next(v for v in views if v.token_id == token_id)


def reminder_text(world) -> str:
    world.remind()
    [message] = world.slack.messages(OWNER)
    return blocks.as_text(message["blocks"])


def show(world, server, user: str = OWNER) -> str:
    before = len(world.slack.response_url_posts())
    world.slack.command(server.slack_url, user, f"show {QUARTERLY}", mode=server.mode)
    wait_for(lambda: len(world.slack.response_url_posts()) > before, timeout=30, what="the answer to show")
    body = world.slack.response_url_posts()[-1]["body"]
    return blocks.as_text(body.get("blocks") or [])


def open_confirm_modal(world, server) -> dict:
    world.remind()
    [message] = world.slack.messages(OWNER)
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
        mode=server.mode,
    )
    return wait_for(lambda: world.slack.views(OWNER, open_only=True), timeout=30, what="the modal")[-1]


# ---------------------------------------------------------------------------------------------
# the evidence


def test_the_calls_narrowing_would_deny_are_named_with_counts_last_use_and_the_scope_that_allows_them(world):
    quarter_close(world)

    assert refresh_usage(world)["prod"].ok

    shadow = view_of(world).shadow
    assert shadow.kept == ("sql",) and shadow.audit.state == "fresh"
    assert [(c.name, c.calls, c.last_seen.date().isoformat(), c.scope) for c in shadow.calls] == [
        ("jobs.runNow", 3, days_ago(80), "jobs"),
        ("jobs.get", 1, days_ago(95), "jobs"),
    ]
    [rare] = [f for f in view_of(world).evaluation.findings if f.code is Finding.RARE_API]
    assert rare.detail == (
        f"jobs.runNow x3, last {days_ago(80)}; jobs.get x1, last {days_ago(95)}: "
        "needs jobs, which auto-scoping will not keep"
    )


def test_the_statement_is_aggregated_by_the_warehouse_and_a_second_read_replaces_the_rows(world):
    quarter_close(world)

    refresh_usage(world)
    refresh_usage(world)

    with db.session_scope(world.engine) as session:
        rows = session.execute(select(ApiCall).order_by(ApiCall.service_name, ApiCall.action_name)).scalars()
        found = [(r.token_id, r.service_name, r.action_name, r.calls, r.approximate) for r in rows]
    assert found == [
        (QUARTERLY, "databrickssql", "executeStatement", 90, False),
        (QUARTERLY, "jobs", "get", 1, False),
        (QUARTERLY, "jobs", "runNow", 3, False),
    ]  # no tokenLogin rows: the login needs no scope


def test_a_call_the_token_made_inside_the_observation_window_is_kept_not_denied(world):
    rows = quarterly_job(clock.now(), QUARTERLY, EMAIL)
    rows += token_use(clock.now() - timedelta(days=3), QUARTERLY, EMAIL, "jobs", "runNow")
    world.org["prod"].add_audit_rows(rows)

    refresh_usage(world)

    shadow = view_of(world).shadow
    assert shadow.kept == ("sql", "jobs") and shadow.calls == ()
    assert Finding.RARE_API not in view_of(world).evaluation.finding_codes


def test_a_call_no_scope_covers_says_manual_scopes_will_not_help(world):
    now = clock.now()
    rows = quarterly_job(now, QUARTERLY, EMAIL, days=5)
    rows += token_use(now - timedelta(days=40), QUARTERLY, EMAIL, "webTerminal", "open")
    rows += token_use(now - timedelta(days=41), QUARTERLY, EMAIL, "sparkUiProxy", "getLogs")
    world.org["prod"].add_audit_rows(rows)
    refresh_usage(world)

    [uncovered] = [f for f in view_of(world).evaluation.findings if f.code is Finding.API_NOT_COVERED]
    text = reminder_text(world)

    assert (
        uncovered.detail
        == f"webTerminal.open x1, last {days_ago(40)}: no scope allows it, manual scopes will not help"
    )
    assert (
        f"`webTerminal.open` x1, last {days_ago(40)}: no scope allows it: manual scopes will not help" in text
    )
    assert (
        f"`sparkUiProxy.getLogs` x1, last {days_ago(41)}: tokenbot does not know which scope allows it"
        in text
    )


def test_a_token_databricks_marks_api_not_covered_shows_its_uncovered_calls(world):
    world.org["prod"].add_token(
        token_id="tok-terminal",
        owner_id=world.owner_id,
        comment="ops shell",
        created_at=clock.now() - timedelta(days=100),
        last_used_at=clock.now(),
        expires_at=clock.now() + timedelta(days=5),
        scopes=["all-apis"],
        inferred_scopes=["sql"],
        autoscope_state="AUTOSCOPE_STATE_API_NOT_COVERED",
    )
    world.sync()
    world.org["prod"].add_audit_rows(
        token_use(clock.now() - timedelta(days=2), "tok-terminal", EMAIL, "webTerminal", "open")
    )
    refresh_usage(world)

    shadow = view_of(world, "tok-terminal").shadow

    assert [(c.name, c.verdict) for c in shadow.calls] == [("webTerminal.open", "not_covered")]


# ---------------------------------------------------------------------------------------------
# where a decision is made


def test_the_reminder_names_the_first_calls_and_points_to_show_for_the_rest(world):
    now = clock.now()
    rows = quarterly_job(now, QUARTERLY, EMAIL, days=3)
    for n, (service, action) in enumerate(
        [
            ("clusters", "create"),
            ("secrets", "getSecret"),
            ("deltaPipelines", "startUpdate"),
            ("repos", "updateRepo"),
        ]
    ):
        rows += token_use(now - timedelta(days=60 + n), QUARTERLY, EMAIL, service, action)
    world.org["prod"].add_audit_rows(rows)
    refresh_usage(world)

    text = reminder_text(world)

    assert f"`clusters.create` x1, last {days_ago(60)}: needs `clusters`" in text
    assert f"`deltaPipelines.startUpdate` x1, last {days_ago(62)}: needs `pipelines`" in text
    assert f"`jobs.runNow` x1, last {days_ago(80)}: needs `jobs`" in text  # by scope: the quarterly run
    assert "secrets.getSecret" not in text and "repos.updateRepo" not in text
    assert "…and 2 more: `/tokens show tok-quarte` lists them all" in text
    assert "Rarely used API at risk" not in text  # the same evidence, said once


def test_show_lists_every_call_narrowing_would_deny(world):
    quarter_close(world)
    refresh_usage(world)

    with running_bot(world.settings, world.engine) as server:
        text = show(world, server)

    assert "Narrowing would deny (2; auto-scoping keeps sql)" in text
    assert f"• `jobs.runNow` x3, last {days_ago(80)}: needs `jobs`" in text
    assert f"• `jobs.get` x1, last {days_ago(95)}: needs `jobs`" in text


def test_the_json_report_carries_the_calls_narrowing_would_deny(world):
    quarter_close(world)
    refresh_usage(world)

    result = CliRunner().invoke(app, ["report", "--format", "json"])

    assert result.exit_code == 0, result.output
    [row] = [r for r in json.loads(result.stdout) if r["token_id"] == QUARTERLY]
    shadow = row["shadow"]
    assert shadow["kept_scopes"] == ["sql"] and shadow["audit"]["state"] == "fresh"
    assert shadow["denied"][0] == {
        "call": "jobs.runNow",
        "service": "jobs",
        "action": "runNow",
        "calls": 3,
        "first_seen": shadow["denied"][0]["first_seen"],
        "last_seen": shadow["denied"][0]["last_seen"],
        "verdict": "denied",
        "scope": "jobs",
        "approximate": False,
    }
    assert shadow["denied"][0]["last_seen"].startswith(days_ago(80)) and "rare_api" in row["findings"]


def test_confirm_scopes_preselects_what_the_denied_calls_need_and_says_why(world):
    now = clock.now()
    quarter_close(world)
    world.org["prod"].add_audit_rows(
        token_use(now - timedelta(days=30), QUARTERLY, EMAIL, "webTerminal", "open")
    )
    refresh_usage(world)

    with running_bot(world.settings, world.engine) as server:
        modal = open_confirm_modal(world, server)

    chooser = next(b for b in modal["blocks"] if b.get("block_id") == "scopes")
    assert [o["value"] for o in chooser["element"]["initial_options"]] == ["sql", "jobs"]
    why = blocks.as_text(modal["blocks"])
    assert "• `sql`: seen by auto-scoping" in why
    assert f"• `jobs`: `jobs.runNow` x3, last {days_ago(80)}; `jobs.get` x1, last {days_ago(95)}" in why
    assert "`webTerminal.open` x1" in why and "manual scopes will not help" in why


def test_confirm_scopes_checks_what_is_submitted_not_what_the_modal_offered(world):
    quarter_close(world)
    refresh_usage(world)

    with running_bot(world.settings, world.engine) as server:
        modal = open_confirm_modal(world, server)
        world.slack.submit(
            server.slack_url,
            OWNER,
            modal["id"],
            {"scopes": {"choose": ["sql", "jobs", "authentication"]}},
            mode=server.mode,
        )
        requested = wait_for(
            lambda: [d for d in decisions(world) if d.status == "requested"], timeout=30, what="the request"
        )

    assert requested[0].parameters["scopes"] == ["authentication", "jobs", "sql"]
    assert not [r for r in world.org["prod"].requests if r.method == "PATCH"]  # an admin decides first


# ---------------------------------------------------------------------------------------------
# missing, failed or late audit data: said, never guessed


def test_a_workspace_whose_audit_log_is_not_read_says_so(world):
    config = world.org.config_path
    config.write_text(config.read_text().replace('audit_warehouse_id = "wh-audit"\n', ""))
    world.org["prod"].add_audit_rows(quarterly_job(clock.now(), QUARTERLY, EMAIL))

    text = reminder_text(world)

    assert "audit log of this workspace is not read" in text and "cannot tell which calls" in text
    assert "jobs.runNow" not in text


def test_a_failed_read_keeps_the_last_good_evidence_and_says_the_read_failed(world):
    quarter_close(world)
    refresh_usage(world)
    world.org["prod"].fail("POST", r"/api/2\.0/sql/statements/?$", 500)

    assert not refresh_usage(world)["prod"].ok

    shadow = view_of(world).shadow
    assert shadow.audit.state == "failed" and [c.name for c in shadow.calls] == ["jobs.runNow", "jobs.get"]
    text = reminder_text(world)
    assert f"The audit log read of {days_ago(0)} failed; shown: the read of {days_ago(0)}" in text


def test_a_read_that_never_succeeded_shows_no_calls(world):
    world.org["prod"].add_audit_rows(quarterly_job(clock.now(), QUARTERLY, EMAIL))
    world.org["prod"].fail("POST", r"/api/2\.0/sql/statements/?$", 500)

    refresh_usage(world)

    shadow = view_of(world).shadow
    assert (shadow.audit.state, shadow.calls) == ("failed", ())
    with db.session_scope(world.engine) as session:
        assert session.get(AuditRead, "prod").read_at is None


def test_an_audit_log_whose_newest_event_is_days_old_is_late(world):
    now = clock.now()
    rows = token_use(now - timedelta(days=4), QUARTERLY, EMAIL, "databrickssql", "executeStatement")
    rows += token_use(now - timedelta(days=80), QUARTERLY, EMAIL, "jobs", "runNow")
    world.org["prod"].add_audit_rows(rows)
    refresh_usage(world)

    text = reminder_text(world)

    assert (
        f"The audit log is late: its newest event is from {days_ago(4)}. Calls since are not counted." in text
    )
    assert f"`jobs.runNow` x1, last {days_ago(80)}" in text


def test_an_empty_audit_log_is_not_taken_for_an_unused_token(world):
    world.org["prod"].add_audit_rows([call(clock.now() - timedelta(days=400), "jobs", "runNow", EMAIL)])

    refresh_usage(world)

    assert view_of(world).shadow.audit.state == "empty"
    assert "held no event in the last 180 days" in reminder_text(world)


def test_an_overlong_action_name_is_clipped_not_a_failed_read(world):
    world.org["prod"].add_audit_rows(
        token_use(clock.now() - timedelta(days=50), QUARTERLY, EMAIL, "jobs", "runNow" + "x" * 300)
    )

    assert refresh_usage(world)["prod"].ok

    [denied] = view_of(world).shadow.calls
    assert len(denied.action) == 200 and denied.scope == "jobs"
