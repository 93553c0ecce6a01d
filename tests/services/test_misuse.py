"""Misuse signals from the audit read, end to end: recorded by the usage refresh that saw them,
posted to the admins channel once (across runs and replicas), and acted on by admins only, with
Acknowledge and Revoke (the decisions service's revoke) through the real bot."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot import clock, db
from bot.enums import DecisionAction, DecisionStatus, MisuseStatus
from bot.models import Decision, MisuseFinding
from bot.sandbox.databricks.audit_rows import USER_AGENTS, failed_logins, use
from bot.services import misuse
from bot.slack.client import make_client
from bot.slack.misuse import SlackMisuseNotifier
from tests.support.autoscope_helpers import EMAIL, OWNER, QUARTERLY, quarterly_world, refresh_audit
from tests.support.bot_server import running_bot, wait_for
from tests.support.slack_helpers import ADMIN_CHANNEL, ADMIN_USER
from tests.support.world import close_world


@pytest.fixture
def world(tmp_path, monkeypatch, database_url):
    world, stack = quarterly_world(tmp_path, monkeypatch, database_url)
    yield world
    close_world(world, stack)


def used(world, hours_ago: float, agent: str, ip: str, token_id: str = QUARTERLY, email: str = EMAIL):
    when = clock.now() - timedelta(hours=hours_ago)
    world.org["prod"].add_audit_rows(
        use(when, token_id, email, "databrickssql", "executeStatement", agent=USER_AGENTS[agent], ip=ip)
    )


def a_month_of_dbt(world):
    for day in range(1, 31):
        used(world, 24 * day, "dbt", f"10.1.2.{day}")


def post(world) -> misuse.Posted:
    settings = world.settings
    return misuse.post_pending(
        engine=world.engine,
        notifier=SlackMisuseNotifier(make_client(settings)),
        channel=settings.slack.admin_channel,
        now=clock.now(),
    )


def findings(world) -> list[MisuseFinding]:
    with db.session_scope(world.engine) as session:
        return list(session.execute(select(MisuseFinding).order_by(MisuseFinding.id)).scalars())


def admin_messages(world) -> list[dict]:
    return world.slack.messages(ADMIN_CHANNEL)


def test_a_token_used_from_a_new_network_reaches_the_admins_channel_once(world):
    a_month_of_dbt(world)
    used(world, 1, "dbt", "203.0.113.7")

    first = refresh_audit(world)
    post(world)
    refresh_audit(world)  # the next day's refresh sees the same network again
    post(world)

    assert first["prod"].misuse_findings == 1
    [finding] = findings(world)
    assert (finding.kind, finding.token_id) == ("new_network", QUARTERLY)
    assert finding.evidence["network"] == "203.0.113.0/24" and finding.posted_at is not None
    [message] = admin_messages(world)
    text = str(message["blocks"])
    assert "Token used from a new network" in text and "203.0.113.0/24" in text and "10.1.2.0/24" in text
    actions = [e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert actions == ["misuse_acknowledge", "misuse_revoke"]


def test_a_token_used_by_several_clients_in_one_day_and_a_new_client(world):
    a_month_of_dbt(world)
    for agent in ("curl", "requests", "sdk_go", "terraform"):
        used(world, 1, agent, "10.1.2.40")

    refresh_audit(world)

    kinds = sorted(f.kind for f in findings(world))
    assert kinds == ["many_clients"] + ["new_client"] * 4
    [many] = [f for f in findings(world) if f.kind == "many_clients"]
    assert many.evidence["distinct"] == 4 and many.evidence["threshold"] == 3


def test_failed_logins_above_the_threshold_are_a_finding(world):
    now = clock.now()
    world.org["prod"].add_audit_rows(
        failed_logins(
            now - timedelta(hours=2), QUARTERLY, EMAIL, 21, agent=USER_AGENTS["curl"], ip="198.51.100.9"
        )
    )
    world.org["prod"].add_audit_rows(
        failed_logins(now - timedelta(hours=1), "tok-other", EMAIL, 20, ip="198.51.100.9")
    )

    refresh_audit(world)

    [finding] = findings(world)
    assert (finding.kind, finding.token_id) == ("failed_logins", QUARTERLY)
    assert finding.evidence["failures"] == 21
    assert finding.evidence["networks"] == [{"name": "198.51.100.0/24", "failures": 21}]


def test_a_token_used_after_its_owner_was_deactivated(world):
    prod = world.org["prod"]
    gone = prod.add_user(user_name="dana@example.com", display_name="Dana", active=False)
    prod.add_token(
        token_id="tok-dana", owner_id=gone, comment="dana's", created_at=clock.now() - timedelta(days=90)
    )
    world.sync()
    used(world, 3, "sdk_python", "10.7.7.7", token_id="tok-dana", email="dana@example.com")

    refresh_audit(world)
    post(world)

    [finding] = findings(world)
    assert (finding.kind, finding.token_id) == ("owner_deactivated", "tok-dana")
    assert "Dana" not in str(admin_messages(world))  # named by email, with the owner marked deactivated
    assert "dana@example.com (deactivated)" in str(admin_messages(world))


def test_allowed_networks_and_thresholds_come_from_policy_misuse(tmp_path, monkeypatch, database_url):
    from tests.support.world import POLICY

    rollout = (clock.now() - timedelta(days=25)).date().isoformat()
    extra = f'autoscope_rollout_date = {rollout}\n[policy.misuse]\nallowed_networks = ["203.0.113.0/24"]\n'
    world, stack = quarterly_world(tmp_path, monkeypatch, database_url, policy=POLICY + extra)
    try:
        a_month_of_dbt(world)
        used(world, 1, "dbt", "203.0.113.7")
        refresh_audit(world)
        assert findings(world) == []
    finally:
        close_world(world, stack)


def test_two_replicas_posting_at_once_post_each_finding_once(world):
    a_month_of_dbt(world)
    used(world, 1, "curl", "203.0.113.7")
    refresh_audit(world)
    assert len(findings(world)) == 2

    threads = [threading.Thread(target=post, args=(world,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert len(admin_messages(world)) == 2
    assert all(f.posted_at is not None and f.attempts == 1 for f in findings(world))


def test_a_post_slack_refuses_is_tried_again_by_the_next_run(world):
    a_month_of_dbt(world)
    used(world, 1, "dbt", "203.0.113.7")
    refresh_audit(world)
    world.slack.fail("chat.postMessage", error="internal_error")

    assert post(world).failed == 1
    assert findings(world)[0].posted_at is None and admin_messages(world) == []
    assert post(world).posted == 1
    assert len(admin_messages(world)) == 1


# ---------------------------------------------------------------------------------------------
# the buttons


@pytest.fixture
def posted(world):
    a_month_of_dbt(world)
    used(world, 1, "dbt", "203.0.113.7")
    refresh_audit(world)
    post(world)
    [message] = admin_messages(world)
    with running_bot(world.settings, world.engine) as server:
        world.server = server
        yield world, message


def click(world, message, user: str, action: str):
    block = next(b for b in message["blocks"] if b["type"] == "actions")
    value = block["elements"][0]["value"]
    response = world.slack.click(
        world.server.slack_url,
        user,
        message["channel"],
        message["ts"],
        action,
        value=value,
        block_id=block["block_id"],
    )
    assert response.status == 200


def decisions_of(world, action: str) -> list[Decision]:
    with db.session_scope(world.engine) as session:
        return list(session.execute(select(Decision).where(Decision.action == action)).scalars())


def test_an_admin_acknowledges_a_finding_and_the_message_says_so(posted):
    world, message = posted

    click(world, message, ADMIN_USER, "misuse_acknowledge")

    wait_for(lambda: findings(world)[0].status == MisuseStatus.ACKNOWLEDGED, what="the acknowledgement")
    wait_for(
        lambda: "Acknowledged by" in str(admin_messages(world)[-1]["blocks"]), what="the redrawn message"
    )
    assert findings(world)[0].acted_by == ADMIN_USER
    [decision] = decisions_of(world, DecisionAction.ACKNOWLEDGE)
    assert decision.status == DecisionStatus.APPLIED
    assert not [r for r in world.org["prod"].requests if r.method == "DELETE"]


def test_an_admin_revokes_the_token_through_the_revoke_decision(posted):
    world, message = posted

    click(world, message, ADMIN_USER, "misuse_revoke")

    wait_for(lambda: findings(world)[0].status == MisuseStatus.REVOKED, what="the revocation")
    [delete] = [r for r in world.org["prod"].requests if r.method == "DELETE"]
    assert delete.path.endswith(f"/tokens/{QUARTERLY}")
    [decision] = decisions_of(world, DecisionAction.REVOKE)
    assert decision.status == DecisionStatus.APPLIED and decision.actor_slack_id == ADMIN_USER
    assert decision.parameters["reason"] == "misuse finding: new network"
    wait_for(lambda: "Revoked by" in str(admin_messages(world)[-1]["blocks"]), what="the redrawn message")


def test_only_admins_act_on_findings_even_the_tokens_owner(posted):
    world, message = posted

    click(world, message, OWNER, "misuse_revoke")
    click(world, message, OWNER, "misuse_acknowledge")

    wait_for(lambda: len(decisions_of(world, DecisionAction.ACKNOWLEDGE)) == 1, what="the refusal")
    wait_for(lambda: len(decisions_of(world, DecisionAction.REVOKE)) == 1, what="the refusal")
    refused = decisions_of(world, DecisionAction.REVOKE) + decisions_of(world, DecisionAction.ACKNOWLEDGE)
    assert {d.status for d in refused} == {DecisionStatus.REFUSED}
    assert {d.parameters["refused"] for d in refused} == {"not_admin"}
    assert findings(world)[0].status == MisuseStatus.OPEN
    assert not [r for r in world.org["prod"].requests if r.method == "DELETE"]
    wait_for(lambda: world.slack.ephemerals(OWNER), what="the answer to the owner")
    assert "Only an admin can do that." in str(world.slack.ephemerals(OWNER))


def test_usage_refresh_and_its_daily_job_post_what_they_found(world):
    from typer.testing import CliRunner

    from bot.cli.main import app
    from bot.jobs.runners import JobContext, usage_job
    from bot.wiring import wire

    a_month_of_dbt(world)
    used(world, 1, "dbt", "203.0.113.7")

    result = CliRunner().invoke(app, ["usage", "refresh"])

    assert result.exit_code == 0, result.output
    assert "misuse: 1 finding(s) posted to the admins channel" in result.output
    used(world, 1, "curl", "10.1.2.77")  # a new client, seen by the daily job
    usage_job(JobContext.over(wire(world.settings, world.engine)))
    assert len(admin_messages(world)) == 2


def test_two_replicas_recording_the_same_finding_at_once_record_it_once(world):
    from bot.domain.misuse import MisuseKind, Signal

    signal = Signal(MisuseKind.NEW_NETWORK, "prod", QUARTERLY, "203.0.113.0/24", {"network": "203.0.113.0/24"})
    both_read = threading.Barrier(2, timeout=30)
    recorded: list[int] = []

    def replica() -> None:
        with db.session_scope(world.engine) as session:
            # each has looked for the key and found nothing before either inserts it
            session.execute(select(MisuseFinding.id).where(MisuseFinding.key == signal.key)).all()
            both_read.wait()
            recorded.append(misuse.record(session=session, signals=[signal], now=clock.now()))

    threads = [threading.Thread(target=replica) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert len(findings(world)) == 1
    assert sum(recorded) == 1
