"""The channel digest: built from sandbox workspaces synced into a real database at a frozen
moment, posted through the real slack_sdk client to the Slack sandbox, chart included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import select
from typer.testing import CliRunner

from bot import db
from bot.cli.main import app
from bot.models import DigestPost
from bot.services import decisions, digest, inventory, report
from bot.slack.blocks import digest as digest_blocks
from bot.slack.client import make_client
from bot.wiring import make_deps
from tests.support.slack_helpers import ADMIN_USER, DIGEST_CHANNEL
from tests.support.world import RUNNING, close_world, make_world

runner = CliRunner()

MONDAY = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # the digest's moment
ALICE, CAROL = "U0ALICE", "U0CAROL"
POLICY = '[policy]\norg_max_inactive_days = 60\norg_max_lifetime_days = 0\nquiet_hours = "off"\n'


@pytest.fixture
def world(tmp_path, monkeypatch, database_url):
    """tokenbot's 60-day inactivity rule on, enforcement off (the default), the chart on."""
    world, stack = make_world(tmp_path, monkeypatch, database_url, policy=POLICY)
    config = world.org.config_path
    config.write_text(config.read_text().replace("[slack]\n", "[slack]\ndigest_chart = true\n", 1))
    yield world
    close_world(world, stack)


def days(n: float) -> timedelta:
    return timedelta(days=n)


@pytest.fixture
def busy_week(world):
    """A week with something in every section of the digest."""
    slack, prod, dev = world.slack, world.org["prod"], world.org["dev"]
    slack.add_user(id=ALICE, email="alice@example.com", name="Alice")
    slack.add_user(id=CAROL, email="carol@example.com", name="Carol")
    alice = prod.add_user(user_name="alice@example.com")
    carol = prod.add_user(user_name="carol@example.com")
    bob = dev.add_user(user_name="bob@example.com")  # not in Slack
    used = MONDAY - days(1)
    prod.add_token(
        token_id="p-expiring", owner_id=alice, comment="nightly export", created_at=MONDAY - days(30),
        expires_at=MONDAY + days(2) + timedelta(hours=1), last_used_at=used, scopes=["sql"],
    )
    dev.add_token(
        token_id="d-observed", owner_id=bob, comment="dashboards", created_at=MONDAY - days(25),
        expires_at=MONDAY + days(300), last_used_at=used, scopes=["all-apis"], inferred_scopes=["sql"],
        autoscope_state=RUNNING,
    )
    prod.add_token(
        token_id="p-idle-50", owner_id=carol, comment="old notebook", created_at=MONDAY - days(200),
        expires_at=MONDAY + days(300), last_used_at=MONDAY - days(50), scopes=["sql"],
    )
    prod.add_token(
        token_id="p-idle-61", owner_id=carol, comment="forgotten", created_at=MONDAY - days(200),
        expires_at=MONDAY + days(300), last_used_at=MONDAY - days(61), scopes=["sql"],
    )
    prod.add_token(
        token_id="p-old", owner_id=alice, comment="to revoke", created_at=MONDAY - days(100),
        expires_at=MONDAY + days(300), last_used_at=used, scopes=["sql"],
    )
    with freeze_time(MONDAY - days(10), tick=True):
        world.sync()
    # Since: a new token that can mint tokens; an admin revoked p-old; dev stopped answering.
    prod.add_token(
        token_id="p-minter", owner_id=alice, comment="ci", created_at=MONDAY - days(2),
        expires_at=MONDAY + days(200), last_used_at=used, scopes=["authentication"],
    )
    with freeze_time(MONDAY - days(1), tick=True):
        world.sync()
        with db.session_scope(world.engine) as session:
            outcome = decisions.revoke(
                session=session,
                gateway_for=make_deps(world.settings, world.engine, make_client(world.settings)).gateway_for,
                actor=decisions.Actor(ADMIN_USER, is_admin=True),
                token_pk=_token_pk(session, "p-old"),
                reason="leaver",
            )
        assert outcome.status == "applied"
    dev.fail("GET", r"/api/2\.0/token-management/tokens", 403)
    with freeze_time(MONDAY - timedelta(hours=2), tick=True):
        results = inventory.sync_workspaces(
            engine=world.engine,
            workspaces=[(w.name, w.host) for w in world.settings.workspaces],
            gateway_for=make_deps(world.settings, world.engine, make_client(world.settings)).gateway_for,
            policy=world.settings.policy,
        )
        assert [r.ok for r in results] == [True, False]
        world.remind(now=MONDAY - timedelta(hours=2))  # finds Alice and Carol; escalates p-expiring
    return world


def _token_pk(session, token_id: str) -> int:
    from bot.models import Token

    return session.execute(select(Token.id).where(Token.token_id == token_id)).scalar_one()


def build(world, **kwargs) -> digest.Digest:
    with db.session_scope(world.engine) as session:
        return digest.build(session=session, policy=world.settings.policy, now=MONDAY, **kwargs)


def text_of(built) -> str:
    return "\n".join(str(block.to_dict()) for block in built)


# ---------------------------------------------------------------------------------------------


def test_the_digest_groups_the_next_14_days_by_day_and_kind_with_owner_mentions(busy_week):
    result = build(busy_week)

    assert [(g.day.isoformat(), [(str(k), [t.token.token_id for t in ts]) for k, ts in g.by_kind])
            for g in result.days] == [
        ("2026-12-09", [("expiry", ["p-expiring"])]),
        ("2026-12-12", [("autoscope_enforcement", ["d-observed"])]),
        ("2026-12-17", [("org_policy", ["p-idle-50"])]),
    ]
    _, built = digest_blocks.digest_message(result)
    text = text_of(built)
    assert "*Wed 9 Dec* · 1 deadline" in text
    assert f"`p-expiring` in *prod* (nightly export) <@{ALICE}>" in text
    assert "`d-observed` in *dev* (dashboards) bob@example.com" in text  # not in Slack: no mention
    assert f"`p-idle-50` in *prod* (old notebook) <@{CAROL}>" in text


def test_the_digest_lists_unanswered_escalations_decisions_new_risks_failures_and_overdue(busy_week):
    result = build(busy_week)

    assert [u.token.token_id for u in result.unanswered] == ["p-expiring"]
    assert result.decision_counts == (("revoke", "applied", 1),)
    assert [(line.action, line.actor_slack_id, line.token.token_id) for line in result.decision_lines] == [
        ("revoke", ADMIN_USER, "p-old")
    ]
    assert [(r.token.token_id, [str(c) for c in r.findings]) for r in result.new_risky] == [
        ("p-minter", ["privileged_scope"])
    ]
    assert [(w.name, w.status) for w in result.failing_workspaces] == [("dev", "stale")]
    assert [o.token.token_id for o in result.overdue] == ["p-idle-61"]  # enforcement is off
    _, built = digest_blocks.digest_message(result)
    text = text_of(built)
    assert "Owners who have not answered" in text and "escalated Mon 7 Dec" in text
    assert f"<@{ADMIN_USER}> revoked `p-old` in *prod*" in text
    assert "`p-minter` in *prod* (ci)" in text and "Can create tokens" in text
    assert "*dev* (stale" in text and "permission denied" in text
    assert "Overdue under tokenbot's policy" in text and "`p-idle-61`" in text
    assert len(built) <= 50


def test_days_are_those_of_the_digest_time_zone(busy_week):
    kiritimati = build(busy_week, tz="Pacific/Kiritimati")  # UTC+14
    los_angeles = build(busy_week, tz="America/Los_Angeles")  # UTC-8 in December

    # p-expiring is due at 10:00 UTC on Wed 9 Dec; p-idle-50 at midnight UTC on Thu 17 Dec.
    assert [g.day.isoformat() for g in kiritimati.days] == ["2026-12-10", "2026-12-12", "2026-12-17"]
    assert [g.day.isoformat() for g in los_angeles.days] == ["2026-12-09", "2026-12-12", "2026-12-16"]


def test_posting_the_digest_uploads_its_chart_and_the_next_one_starts_from_it(busy_week):
    with freeze_time(MONDAY, tick=True):
        result = runner.invoke(app, ["digest"], catch_exceptions=False)

    assert result.exit_code == 0, result.output
    assert "Digest posted to C0DIGEST: 3 deadlines in the next 14 days" in result.output
    [message] = [m for m in busy_week.slack.messages(DIGEST_CHANNEL) if m.get("blocks")]
    assert message["text"].startswith("tokenbot digest: 3 deadlines")
    [chart] = busy_week.slack.files()
    assert chart["completed"] and chart["channels"] == [DIGEST_CHANNEL]
    assert chart["content"].startswith(b"\x89PNG") and chart["length"] == len(chart["content"]) > 5000
    with db.session_scope(busy_week.engine) as session:
        [post] = session.execute(select(DigestPost)).scalars().all()
    assert post.channel == DIGEST_CHANNEL and post.message_ts == message["ts"]

    later = build(busy_week)  # the same moment: nothing happened since the digest just posted
    assert later.since == post.posted_at
    assert not later.decision_counts and not later.new_risky
    assert later.days and later.failing_workspaces  # what is coming and what is broken stay


def test_a_quiet_week_says_so_in_one_line_and_draws_no_chart(world):
    with freeze_time(MONDAY, tick=True):
        done = make_deps(world.settings, world.engine, make_client(world.settings)).post_digest()

    assert done.channel == "C0DIGEST" and done.summary.startswith("Nothing due")
    [message] = world.slack.messages(DIGEST_CHANNEL)
    sections = [b for b in message["blocks"] if b["type"] == "section"]
    assert len(sections) == 1 and "A quiet week" in sections[0]["text"]["text"]
    assert world.slack.files() == []


def test_dry_run_prints_the_digest_and_posts_nothing(busy_week):
    with freeze_time(MONDAY, tick=True):
        result = runner.invoke(app, ["digest", "--dry-run"], catch_exceptions=False)

    assert result.exit_code == 0, result.output
    assert "TOKENBOT DIGEST · MON 7 DEC 2026" in result.output
    assert "p-expiring" in result.output and "Dry run: nothing was posted" in result.output
    assert busy_week.slack.messages(DIGEST_CHANNEL) == []
    with db.session_scope(busy_week.engine) as session:
        assert session.execute(select(DigestPost)).first() is None


def test_a_failed_post_records_nothing_so_the_next_digest_covers_the_same_time(busy_week):
    busy_week.slack.fail("chat.postMessage", error="not_in_channel")
    with freeze_time(MONDAY, tick=True):
        done = make_deps(busy_week.settings, busy_week.engine, make_client(busy_week.settings)).post_digest()

    assert done.summary is None and "invite the bot" in done.error
    with db.session_scope(busy_week.engine) as session:
        assert session.execute(select(DigestPost)).first() is None


def test_every_extension_since_the_last_digest_is_listed_with_who_asked_and_who_approved(busy_week):
    carol = decisions.Actor(CAROL)
    policy = busy_week.settings.policy
    with freeze_time(MONDAY - days(1), tick=True), db.session_scope(busy_week.engine) as session:
        pk = _token_pk(session, "p-idle-50")
        [view] = report.token_views(session=session, policy=policy, now=MONDAY - days(1), token_pks=[pk])
        [due] = [d for d in view.evaluation.deadlines if d.kind == "org_policy"]
        own = decisions.extend(
            session=session, gateway_for=None, actor=carol, token_pk=pk, deadline=decisions.DeadlineRef.of(due),
            days=30, reason="month end", policy=policy,
        )
        asked = decisions.extend(
            session=session, gateway_for=None, actor=carol, token_pk=pk,
            deadline=decisions.DeadlineRef(kind="org_policy", due_at=due.due_at + days(30)),
            days=40, reason="audit", policy=policy,
        )
        approved = decisions.approve(
            session=session, gateway_for=None, actor=decisions.Actor(ADMIN_USER, is_admin=True),
            decision_id=asked.decision_id,
        )
    assert (own.status, asked.status, approved.status) == ("applied", "requested", "applied")

    result = build(busy_week)

    assert [(e.token.token_id, e.requested_by, e.approved_by) for e in result.extensions] == [
        ("p-idle-50", CAROL, CAROL),
        ("p-idle-50", CAROL, ADMIN_USER),
    ]
    assert result.extensions[1].until == due.due_at + days(70)
    assert "2 extensions" in result.summary()
    _, built = digest_blocks.digest_message(result)
    text = text_of(built)
    assert "Extensions since" in text
    assert f"`p-idle-50` in *prod* (old notebook) (organisation policy) until {digest_blocks.moment_day(due.due_at + days(30), 'UTC')}: asked by <@{CAROL}>, approved by themselves" in text  # noqa: E501
    assert f"asked by <@{CAROL}>, approved by <@{ADMIN_USER}>" in text
