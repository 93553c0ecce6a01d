"""Enforcement of tokenbot's own policy, end to end: sandbox workspaces synced into a real
database, revocations through the Databricks sandbox, notices through the Slack sandbox; one test
per guard (stale workspace, dry run, the per-run limit, open requests, a failed revocation)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from bot import clock, db
from bot.models import Decision, Notification, Token
from bot.services import decisions, enforcement, inventory
from bot.slack.client import make_client
from bot.wiring import make_deps
from tests.support.bot_server import running_bot, wait_for
from tests.support.enforcement_helpers import run_enforcement
from tests.support.slack_helpers import ADMIN_CHANNEL, ADMIN_USER
from tests.support.world import close_world, make_world

OWNER, OTHER = "U0OWEN", "U0OLGA"
LATER = timedelta(days=5)  # the enforcement runs five days later: every deadline has passed


def policy(enforce: bool, limit: int = 20) -> str:
    return (
        '[policy]\norg_max_inactive_days = 60\norg_max_lifetime_days = 0\nquiet_hours = "off"\n'
        f"enforce = {'true' if enforce else 'false'}\nmax_revocations_per_run = {limit}\n"
    )


@pytest.fixture
def world_factory(tmp_path, monkeypatch, database_url):
    """Owen owns three tokens in prod and one in dev, Olga one in prod: tokenbot's 60-day inactivity
    rule reaches them in the next five days, and a reminder run has found both owners in Slack."""
    made = []

    def make(*, enforce: bool, limit: int = 20):
        world, stack = make_world(tmp_path, monkeypatch, database_url, policy=policy(enforce, limit))
        made.append((world, stack))
        world.slack.add_user(id=OWNER, email="owen@example.com", name="Owen")
        world.slack.add_user(id=OTHER, email="olga@example.com", name="Olga")
        prod, dev = world.org["prod"], world.org["dev"]
        owen, olga = prod.add_user(user_name="owen@example.com"), prod.add_user(user_name="olga@example.com")
        for token_id, idle_days, owner in (
            ("p-oldest", 59, owen),
            ("p-older", 58, owen),
            ("p-old", 57, olga),
            ("p-recent", 56, owen),
        ):
            prod.add_token(
                token_id=token_id,
                owner_id=owner,
                comment=f"job {token_id}",
                created_at=clock.now() - timedelta(days=200),
                expires_at=clock.now() + timedelta(days=200),
                last_used_at=clock.now() - timedelta(days=idle_days),
                scopes=["sql"],
            )
        dev.add_token(
            token_id="d-old",
            owner_id=dev.add_user(user_name="owen@example.com"),
            comment="dev job",
            created_at=clock.now() - timedelta(days=200),
            expires_at=clock.now() + timedelta(days=200),
            last_used_at=clock.now() - timedelta(days=55),
            scopes=["sql"],
        )
        world.sync()
        world.remind()  # the 1-day reminders: owners found in Slack
        return world

    yield make
    for world, stack in made:
        close_world(world, stack)


def enforce(world, *, dry_run: bool = False, now=None) -> enforcement.EnforcementSummary:
    return run_enforcement(world, now=now or clock.now() + LATER, dry_run=dry_run)


def live(sandbox) -> set[str]:
    return {token["token_id"] for token in sandbox.tokens()}


def deletes(sandbox) -> list[str]:
    return [r.path.rsplit("/", 1)[-1] for r in sandbox.requests if r.method == "DELETE"]


def revocations(world) -> list[Decision]:
    with db.session_scope(world.engine) as session:
        return list(
            session.execute(
                select(Decision).where(Decision.action == "revoke").order_by(Decision.id)
            ).scalars()
        )


def newest_text(world, channel) -> str:
    return json.dumps(world.slack.messages(channel)[-1])


# ---------------------------------------------------------------------------------------------


def test_an_overdue_token_is_revoked_by_tokenbot_with_the_rule_and_everyone_is_told(world_factory):
    world = world_factory(enforce=True)

    summary = enforce(world)

    assert (summary.overdue, summary.revoked, summary.failed, summary.stopped) == (5, 5, 0, False)
    assert live(world.org["prod"]) == set() and live(world.org["dev"]) == set()
    decision = revocations(world)[0]
    assert (decision.status, decision.actor_slack_id, decision.actor_role) == (
        "applied",
        "tokenbot",
        "tokenbot",
    )
    assert decision.parameters["reason"].startswith(
        "tokenbot policy: revoke (inactive over 60 days) (last used"
    )
    assert decision.parameters["deadline_kind"] == "org_policy"
    owen_dm = newest_text(world, OWNER)
    assert "tokenbot revoked 4 of your Databricks tokens" in owen_dm
    assert "p-oldest" in owen_dm and "d-old" in owen_dm and "inactive over 60 days" in owen_dm
    assert "tokenbot revoked 1 of your Databricks token" in newest_text(world, OTHER)
    report = newest_text(world, ADMIN_CHANNEL)
    assert "tokenbot revoked 5 token(s) under its policy" in report and f"<@{OTHER}>" in report

    again = enforce(world)
    assert (again.overdue, again.revoked) == (0, 0)  # revoked tokens are gone: nothing to do


def test_with_enforcement_off_overdue_tokens_are_escalated_once_and_nothing_is_revoked(world_factory):
    world = world_factory(enforce=False)
    admin_before = len(world.slack.messages(ADMIN_CHANNEL))

    first, second = enforce(world), enforce(world)

    assert (first.overdue, first.escalated, first.revoked) == (5, 5, 0)
    assert (second.overdue, second.escalated) == (5, 0)  # told once
    assert deletes(world.org["prod"]) == [] and revocations(world) == []
    messages = world.slack.messages(ADMIN_CHANNEL)[admin_before:]
    assert len(messages) == 1
    assert "5 tokens need an admin" in messages[0]["text"]
    assert "past tokenbot's policy deadline" in json.dumps(messages[0]["blocks"])
    with db.session_scope(world.engine) as session:
        steps = session.execute(
            select(Notification.step, Notification.status).where(Notification.step == "overdue")
        )
        assert sorted(steps) == [("overdue", "sent")] * 5


def test_an_escalation_slack_refused_is_forgotten_and_sent_by_the_next_run(world_factory):
    world = world_factory(enforce=False)
    admin_before = len(world.slack.messages(ADMIN_CHANNEL))
    world.slack.fail("chat.postMessage", error="channel_not_found")

    first = enforce(world)

    assert (first.escalated, first.notify_failed) == (0, 1)
    with db.session_scope(world.engine) as session:
        assert session.execute(select(Notification.id).where(Notification.step == "overdue")).all() == []
    assert world.slack.messages(ADMIN_CHANNEL)[admin_before:] == []
    second = enforce(world)
    assert (second.escalated, second.notify_failed) == (5, 0)  # written and sent again
    assert len(world.slack.messages(ADMIN_CHANNEL)[admin_before:]) == 1


def test_an_admin_can_revoke_from_the_overdue_escalation(world_factory):
    world = world_factory(enforce=False)
    enforce(world)
    message = world.slack.messages(ADMIN_CHANNEL)[-1]
    reference = next(
        b["block_id"].removeprefix("token:")
        for b in message["blocks"]
        if b.get("block_id", "").startswith("token:") and "`p-old`" in json.dumps(b)
    )

    with running_bot(world.settings, world.engine) as server:
        world.slack.click(
            server.slack_url,
            ADMIN_USER,
            ADMIN_CHANNEL,
            message["ts"],
            "token_revoke",
            block_id=f"actions:{reference}",
        )
        wait_for(lambda: revocations(world), what="the admin's revocation")
        wait_for(lambda: "Revoked" in newest_text(world, ADMIN_CHANNEL), what="the message update")

    assert live(world.org["prod"]) == {"p-oldest", "p-older", "p-recent"}
    assert revocations(world)[0].actor_slack_id == ADMIN_USER
    assert world.slack.messages(ADMIN_CHANNEL)[-1]["blocks"][0]["text"]["text"] == "5 tokens need an admin"


def test_a_workspace_whose_last_sync_failed_is_left_alone(world_factory):
    world = world_factory(enforce=True)
    dev = world.org["dev"]
    dev.fail("GET", r"/api/2\.0/token-management/tokens", 403)
    results = inventory.sync_workspaces(
        engine=world.engine,
        workspaces=[(w.name, w.host) for w in world.settings.workspaces],
        gateway_for=make_deps(world.settings, world.engine, make_client(world.settings)).gateway_for,
        policy=world.settings.policy,
    )
    assert [(r.workspace, r.ok) for r in results] == [("prod", True), ("dev", False)]

    summary = enforce(world)

    assert (summary.skipped_stale, summary.revoked) == (1, 4)
    assert live(dev) == {"d-old"} and deletes(dev) == []


def test_dry_run_records_what_would_happen_once_and_calls_nothing(world_factory):
    world = world_factory(enforce=True)
    owen_before = len(world.slack.messages(OWNER))

    first, second = enforce(world, dry_run=True), enforce(world, dry_run=True)

    assert (first.revoked, second.revoked) == (5, 0)  # the second run does not record them again
    assert deletes(world.org["prod"]) == [] and deletes(world.org["dev"]) == []
    assert live(world.org["prod"]) == {"p-oldest", "p-older", "p-old", "p-recent"}
    assert all(d.parameters.get("dry_run") for d in revocations(world)) and len(revocations(world)) == 5
    assert len(world.slack.messages(OWNER)) == owen_before  # owners hear nothing of a dry run
    assert "Dry run: tokenbot would have revoked 5 token(s)" in newest_text(world, ADMIN_CHANNEL)
    with db.session_scope(world.engine) as session:
        assert session.execute(select(Token.gone_at).where(Token.gone_at.is_not(None))).first() is None


def test_above_the_limit_nothing_is_revoked_and_the_breaker_trips(world_factory):
    world = world_factory(enforce=True, limit=2)

    summary = enforce(world)

    assert (summary.revoked, summary.breaker_tripped) == (0, True)
    assert summary.held == {"breaker": 5}
    assert deletes(world.org["prod"]) == [] and deletes(world.org["dev"]) == []
    alert = newest_text(world, ADMIN_CHANNEL)
    assert "Enforcement breaker tripped: none of 5 due token(s) was revoked" in alert
    assert "max_revocations_per_run (2)" in alert and "p-oldest" in alert


def test_a_token_with_an_open_request_waits_for_the_admins(world_factory):
    world = world_factory(enforce=True)
    with freeze_time(clock.now() + LATER - timedelta(days=1)), db.session_scope(world.engine) as session:
        # a day before the run: within policy.request_hold_days
        token_pk = session.execute(select(Token.id).where(Token.token_id == "p-old")).scalar_one()
        outcome = decisions.not_mine(session=session, actor=decisions.Actor(OTHER), token_pk=token_pk)
    assert outcome.status == "requested"

    summary = enforce(world)

    assert (summary.waiting, summary.revoked) == (1, 4)
    assert "p-old" in live(world.org["prod"])


def test_one_failed_revocation_does_not_stop_the_others_and_the_admins_hear_of_it(world_factory):
    world = world_factory(enforce=True)
    world.org["prod"].fail("DELETE", r"/api/2\.0/token-management/tokens/p-older$", 500)

    summary = enforce(world)

    assert (summary.revoked, summary.failed) == (4, 1)
    assert live(world.org["prod"]) == {"p-older"}
    assert [d.status for d in revocations(world) if d.status == "failed"] == ["failed"]
    report = newest_text(world, ADMIN_CHANNEL)
    assert "Could not revoke" in report and "p-older" in report


# holds: a request shields a token for request_hold_days, once ---------------------------------------


def not_mine(world, token_id, actor=OTHER):
    with db.session_scope(world.engine) as session:
        token_pk = session.execute(select(Token.id).where(Token.token_id == token_id)).scalar_one()
        return decisions.not_mine(session=session, actor=decisions.Actor(actor), token_pk=token_pk)


def hold_notices(world) -> list[Notification]:
    with db.session_scope(world.engine) as session:
        return list(session.execute(select(Notification).where(Notification.step == "hold_ended")).scalars())


def test_an_unanswered_request_holds_a_token_for_request_hold_days_and_the_admins_are_told_once(world_factory):
    world = world_factory(enforce=True)
    request = not_mine(world, "p-old")  # made now; the runs below come later
    admin_before = len(world.slack.messages(ADMIN_CHANNEL))
    start = clock.now()

    held = enforce(world, now=start + timedelta(days=2, hours=23))
    assert held.waiting == 1 and "p-old" not in deletes(world.org["prod"])

    ended = enforce(world, now=start + timedelta(days=3, hours=1))
    again = enforce(world, now=start + timedelta(days=3, hours=2))

    assert (ended.waiting, [i.view.token_id for i in ended.hold_ended]) == (0, ["p-old"])
    assert "p-old" in deletes(world.org["prod"]) and "p-old" not in live(world.org["prod"])
    [notice] = hold_notices(world)
    assert (notice.status, notice.recipient) == ("sent", ADMIN_CHANNEL)
    told = [m for m in world.slack.messages(ADMIN_CHANNEL)[admin_before:] if "no answer in time" in json.dumps(m)]
    assert len(told) == 1 and "`p-old`" in json.dumps(told[0])
    assert again.hold_ended == [] and len(hold_notices(world)) == 1  # told once, not every run
    assert world_decision(world, request.decision_id).status == "requested"  # still for the admins


def test_with_enforcement_off_an_ended_hold_is_told_once_and_nothing_is_revoked(world_factory):
    world = world_factory(enforce=False)
    not_mine(world, "p-old")
    start = clock.now()

    runs = [enforce(world, now=start + timedelta(days=4, hours=h)) for h in (0, 1, 2)]

    assert [len(r.hold_ended) for r in runs] == [1, 1, 1]  # still past its hold every run
    assert len(hold_notices(world)) == 1 and deletes(world.org["prod"]) == []


def test_a_denied_not_mine_clicked_again_at_once_is_refused_and_does_not_hold_the_token(world_factory):
    world = world_factory(enforce=True)
    [message] = world.slack.messages(OWNER)
    reference = next(
        b["block_id"].removeprefix("token:")
        for b in message["blocks"]
        if b.get("block_id", "").startswith("token:") and "`p-oldest`" in json.dumps(b)
    )

    def click_not_mine():
        world.slack.click(
            server.slack_url, OWNER, message["channel"], message["ts"], "token_not_mine",
            block_id=f"actions:{reference}", as_shown=message,
        )

    with running_bot(world.settings, world.engine) as server:
        click_not_mine()
        [request] = wait_for(lambda: not_mine_decisions(world), what="the Not mine request")
        assert request.status == "requested"
        with db.session_scope(world.engine) as session:
            denial = decisions.deny(
                session=session, actor=decisions.Actor(ADMIN_USER, is_admin=True), decision_id=request.id
            )
        assert denial.status == "denied"
        click_not_mine()
        wait_for(lambda: len(not_mine_decisions(world)) == 2, what="the second click recorded")
        wait_for(
            lambda: any("already denied" in e["text"] for e in world.slack.ephemerals(OWNER)),
            what="the owner to be told why",
        )

    again = not_mine_decisions(world)[-1]
    assert (again.status, again.parameters["refused"]) == ("refused", "denied_before")
    summary = enforce(world, now=clock.now() + timedelta(days=1, hours=12))  # within a hold, were there one
    assert summary.waiting == 0 and "p-oldest" in deletes(world.org["prod"])


def not_mine_decisions(world) -> list[Decision]:
    with db.session_scope(world.engine) as session:
        query = select(Decision).where(Decision.action == "not_mine", Decision.actor_slack_id == OWNER)
        return list(session.execute(query.order_by(Decision.id)).scalars())


def world_decision(world, decision_id: int) -> Decision:
    with db.session_scope(world.engine) as session:
        return session.get(Decision, decision_id)


def test_a_newer_request_of_another_kind_does_not_start_the_hold_again(world_factory):
    world = world_factory(enforce=True)
    start = clock.now()
    with db.session_scope(world.engine) as session:
        token_pk = session.execute(select(Token.id).where(Token.token_id == "p-old")).scalar_one()
        scopes = decisions.confirm_scopes(
            session=session, gateway_for=None, actor=decisions.Actor(OTHER), token_pk=token_pk,
            scopes=["all-apis"],
        )
    with freeze_time(start + timedelta(days=3)):
        lost = not_mine(world, "p-old")
    assert (scopes.status, lost.status) == ("requested", "requested")

    summary = enforce(world, now=start + timedelta(days=3, hours=2))

    assert summary.waiting == 0 and [i.view.token_id for i in summary.hold_ended] == ["p-old"]
    assert "p-old" in deletes(world.org["prod"])
