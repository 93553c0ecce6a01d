"""After auto-scoping narrowed a token: its owner gets one message (what it had, what it has now,
the rarely used scopes it lost), from a sync or from an `autoscope.enforced` event; Restore
scopes puts the lost scopes back with one PATCH, recorded; Looks fine is recorded too."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from bot import clock, db
from bot.models import Decision, Notification, Token
from bot.services import decisions as decisions_service
from bot.services import events
from bot.services.narrowing import NarrowedMessage, NarrowedToken
from bot.services.ports import Recipient
from bot.slack import blocks
from bot.slack.blocks.narrowing import narrowed_message
from tests.support.autoscope_helpers import (
    EMAIL,
    OWNER,
    QUARTERLY,
    enforced,
    gateways,
    quarterly_job,
    quarterly_world,
    refresh_usage,
    token_use,
)
from tests.support.bot_server import running_bot, wait_for
from tests.support.slack_helpers import ADMIN_CHANNEL
from tests.support.world import close_world

COMPLETED = "AUTOSCOPE_STATE_COMPLETED"


@pytest.fixture
def world(tmp_path, monkeypatch, database_url):
    """Quinn's token runs SQL daily and a `jobs` run once a quarter (80 days ago); the audit log
    is read, so tokenbot knows it."""
    world, stack = quarterly_world(tmp_path, monkeypatch, database_url)
    world.org["prod"].add_audit_rows(quarterly_job(clock.now(), QUARTERLY, "quinn@example.com"))
    assert refresh_usage(world)["prod"].ok
    yield world
    close_world(world, stack)


def databricks_narrows(world):
    """Databricks enforces auto-scoping: the token keeps only what it saw in 30 days."""
    world.org["prod"].set_autoscope(QUARTERLY, COMPLETED, scopes=["sql"])


def narrowed_messages(world) -> list[dict]:
    return [m for m in world.slack.messages(OWNER) if "narrowed" in m["text"].lower()]


def decisions(world, action=None) -> list[Decision]:
    """The decisions recorded (a claim whose Databricks call is still under way is not, yet)."""
    with db.session_scope(world.engine) as session:
        rows = session.execute(select(Decision).order_by(Decision.id)).scalars().all()
    return [d for d in rows if (action is None or d.action == action) and d.status != "in_progress"]


def token(world) -> Token:
    with db.session_scope(world.engine) as session:
        return session.execute(select(Token).where(Token.token_id == QUARTERLY)).scalar_one()


def patches(world):
    return [r for r in world.org["prod"].requests if r.method == "PATCH"]


def eighty_days_ago() -> str:
    from datetime import timedelta

    return (clock.now() - timedelta(days=80)).date().isoformat()


# ---------------------------------------------------------------------------------------------
# one message


def test_a_sync_that_sees_the_narrowing_sends_the_owner_one_message(world):
    databricks_narrows(world)
    world.sync()

    world.remind()
    world.remind()  # a second run sends nothing again

    [message] = world.slack.messages(OWNER)
    text = blocks.as_text(message["blocks"])
    assert "AUTO-SCOPING NARROWED YOUR DATABRICKS TOKEN" in text
    assert "Had: `all-apis` (every API, while auto-scoping observed it)" in text
    assert "Has now: `sql`" in text
    assert f"Lost a rarely used API*: `jobs` (Jobs, last used {eighty_days_ago()})" in text
    assert "[Restore scopes] [Looks fine]" in text
    with db.session_scope(world.engine) as session:
        [row] = session.execute(select(Notification).where(Notification.step == "narrowed")).scalars()
    assert (row.status, row.deadline_kind, row.recipient) == ("sent", "autoscope_enforcement", OWNER)
    assert row.due_date == token(world).narrowed_at.date()


def ingest(world, body, source="webhook"):
    with db.session_scope(world.engine) as session:
        event = events.parse_event(body, workspaces={"prod", "dev"})
        return events.ingest(session=session, event=event, source=source, now=clock.now(),
                             gateway_for=gateways(world))


def test_an_enforced_event_sends_one_message_and_the_later_sync_no_second(world):
    databricks_narrows(world)
    assert ingest(world, enforced(token_id=QUARTERLY)).applied  # before tokenbot's sync saw it

    world.remind()
    world.sync()  # now the sync shows the narrowing the event already announced
    world.remind()

    [message] = narrowed_messages(world)
    assert "Has now: `sql`" in blocks.as_text(message["blocks"])
    assert len(world.slack.messages(OWNER)) == 1


def test_a_forged_enforced_event_tells_nobody_and_restore_never_narrows_the_real_token(world):
    """The reproduced attack: made-up scopes for a token still observed (all-apis)."""
    forged = enforced(token_id=QUARTERLY, scopes=["sql"], previous_scopes=["jobs", "sql"])

    outcome = ingest(world, forged)
    world.remind()

    assert outcome.rejected and "still observes" in outcome.rejected
    assert narrowed_messages(world) == []
    assert token(world).narrowed_at is None and token(world).scopes == ["all-apis"]
    assert patches(world) == []


def test_an_old_narrowing_sends_nothing(world):
    databricks_narrows(world)
    ingest(world, enforced(token_id=QUARTERLY, enforcement_at="2025-01-01T00:00:00Z"), source="file")

    world.remind()

    assert narrowed_messages(world) == []


def test_dry_run_previews_the_message_and_records_nothing(world):
    databricks_narrows(world)
    world.sync()

    summary = world.remind(dry_run=True)

    assert any("AUTO-SCOPING NARROWED" in preview for preview in summary.previews)
    assert world.slack.messages(OWNER) == [] and world.notifications() == []


# ---------------------------------------------------------------------------------------------
# when: the owner's morning, unless a job is failing now


def at_night(world):
    """Quiet hours on, and Quinn in Paris: 01:30 UTC tomorrow is 02:30 there."""
    config = world.org.config_path
    config.write_text(config.read_text().replace('quiet_hours = "off"', 'quiet_hours = "18:00-09:00"'))
    world.slack.add_user(id=OWNER, email=EMAIL, name="Quinn", tz="Europe/Paris")
    day = (clock.now() + timedelta(days=1)).date()
    return datetime(day.year, day.month, day.day, 1, 30, tzinfo=UTC)


def remind_at(world, moment):
    with freeze_time(moment):
        return world.remind(now=moment)


def test_a_notice_at_0230_local_waits_for_0900(world):
    night = at_night(world)
    databricks_narrows(world)  # it lost `jobs`, last used 80 days ago: nothing fails tonight
    world.sync()

    summary = remind_at(world, night)

    assert narrowed_messages(world) == [] and world.slack.messages(ADMIN_CHANNEL) == []
    assert summary.held_for_quiet_hours == 1 and world.notifications() == []

    remind_at(world, night + timedelta(hours=6))  # 08:30 in Paris: still quiet
    assert narrowed_messages(world) == []
    remind_at(world, night + timedelta(hours=6, minutes=30))  # 09:00

    [message] = narrowed_messages(world)
    assert "Lost a rarely used API" in blocks.as_text(message["blocks"])
    assert world.slack.messages(ADMIN_CHANNEL) == []


def test_a_lost_scope_used_in_the_last_7_days_tells_the_admins_at_once_and_the_owner_at_0900(world):
    night = at_night(world)
    used = clock.now() - timedelta(days=2)
    world.org["prod"].add_audit_rows(token_use(used, QUARTERLY, EMAIL, "jobs", "runNow"))
    assert refresh_usage(world)["prod"].ok
    databricks_narrows(world)
    world.sync()

    remind_at(world, night)

    assert narrowed_messages(world) == []
    [alert] = world.slack.messages(ADMIN_CHANNEL)
    text = blocks.as_text(alert["blocks"])
    assert "1 NARROWED TOKEN NEED AN ADMIN NOW" in text
    assert f"A job is failing now*: the token lost `jobs` (Jobs, used {used.date().isoformat()})" in text
    assert "Owner: quinn@example.com (urgent: a job is failing now; its owner hears in their morning)" in text
    assert "[Restore scopes] [Looks fine]" in text

    remind_at(world, night + timedelta(hours=7))  # 09:30 in Paris
    remind_at(world, night + timedelta(hours=8))

    [message] = narrowed_messages(world)
    assert "A job is failing now" in blocks.as_text(message["blocks"])
    assert len(world.slack.messages(ADMIN_CHANNEL)) == 1
    assert sorted(n.recipient for n in world.notifications()) == sorted([ADMIN_CHANNEL, OWNER])


# ---------------------------------------------------------------------------------------------
# narrowed to nothing


@pytest.fixture
def narrowed_to_nothing(world):
    """Auto-scoping kept no scope of Quinn's token; five other tokens keep the listing plausible."""
    for index in range(5):
        world.org["prod"].add_token(owner_id=world.owner_id, comment=f"other {index}", scopes=["sql"])
    world.sync()
    world.org["prod"].set_autoscope(QUARTERLY, COMPLETED, scopes=[])
    world.sync()
    world.remind()
    with running_bot(world.settings, world.engine) as server:
        world.server = server
        yield world


def test_a_token_narrowed_to_no_scope_is_reported_as_unable_to_call_anything(narrowed_to_nothing):
    world = narrowed_to_nothing
    [message] = narrowed_messages(world)
    assert message["text"] == (
        "Auto-scoping narrowed token tok-quarte in prod to no scope at all: it can call nothing now "
        "(it had all-apis)."
    )
    text = blocks.as_text(message["blocks"])
    assert "Has now: *no scope at all: it can call no API, so everything that uses it fails*" in text
    assert "This token can call nothing now." in text and "now ." not in text
    [alert] = world.slack.messages(ADMIN_CHANNEL)  # urgent: the admins hear at once
    alert_text = blocks.as_text(alert["blocks"])
    assert "NEED AN ADMIN NOW" in alert_text and "(urgent: it can call nothing; its owner hears now too)" in alert_text


def test_restore_of_a_token_narrowed_to_nothing_preselects_the_scopes_it_used(narrowed_to_nothing):
    world = narrowed_to_nothing

    decision = restore_with_the_preselection(world)

    assert decision.parameters["scopes"] == ["jobs", "sql"]  # daily SQL, the quarterly jobs run
    assert decision.status == "applied"
    [patch] = patches(world)
    assert sorted(patch.json["token"]["scopes"]) == ["jobs", "sql"]


# ---------------------------------------------------------------------------------------------
# the buttons


@pytest.fixture
def narrowed(world):
    databricks_narrows(world)
    world.sync()
    world.remind()
    with running_bot(world.settings, world.engine) as server:
        world.server = server
        yield world


def click(world, action_id):
    [message] = narrowed_messages(world)
    actions = next(b for b in message["blocks"] if b["type"] == "actions")
    return world.slack.click(
        world.server.slack_url,
        OWNER,
        message["channel"],
        message["ts"],
        action_id,
        block_id=actions["block_id"],
    )


def test_restore_opens_preselected_with_the_lost_rare_scope_and_patches_once(narrowed):
    click(narrowed, "token_restore_scopes")
    click(narrowed, "token_restore_scopes")  # a double click: two modals
    modals = wait_for(
        lambda: (
            len(narrowed.slack.views(OWNER, open_only=True)) == 2
            and narrowed.slack.views(OWNER, open_only=True)
        ),
        what="the modals",
    )
    chooser = next(b for b in modals[0]["blocks"] if b.get("block_id") == "scopes")
    assert [o["value"] for o in chooser["element"]["initial_options"]] == ["jobs"]

    for modal in modals:  # both submitted
        narrowed.slack.submit(narrowed.server.slack_url, OWNER, modal["id"], {"scopes": {"choose": ["jobs"]}})
    wait_for(lambda: len(decisions(narrowed, "restore")) == 2, what="both attempts recorded")

    [patch] = patches(narrowed)
    assert (patch.json["update_mask"], sorted(patch.json["token"]["scopes"])) == ("scopes", ["jobs", "sql"])
    applied, again = decisions(narrowed, "restore")
    assert applied.status == "applied" and again.status == "refused"
    assert (applied.parameters["before"], applied.parameters["after"]) == (["sql"], ["jobs", "sql"])
    assert applied.parameters["previous_scopes"] == ["all-apis"]
    assert sorted(narrowed.org["prod"].tokens()[0]["scopes"]) == ["jobs", "sql"]
    wait_for(
        lambda: "Scopes restored by" in json.dumps(narrowed_messages(narrowed)[0]["blocks"]),
        what="the message to show the restore",
    )
    assert "token_restore_scopes" not in json.dumps(narrowed_messages(narrowed)[0]["blocks"])


def restore_with_the_preselection(world):
    click(world, "token_restore_scopes")
    [modal] = wait_for(lambda: world.slack.views(OWNER, open_only=True), what="the modal")
    chooser = next(b for b in modal["blocks"] if b.get("block_id") == "scopes")
    preselected = [o["value"] for o in chooser["element"]["initial_options"]]
    world.slack.submit(world.server.slack_url, OWNER, modal["id"], {"scopes": {"choose": preselected}})
    [decision] = wait_for(lambda: decisions(world, "restore"), what="the restore recorded")
    return decision


def test_restore_never_takes_away_a_scope_the_token_has_in_databricks_now(narrowed):
    # Someone gave the token dashboards in Databricks after tokenbot's last sync.
    narrowed.org["prod"].set_autoscope(QUARTERLY, "AUTOSCOPE_STATE_USER_SELECTED", scopes=["sql", "dashboards"])

    decision = restore_with_the_preselection(narrowed)

    [patch] = patches(narrowed)
    assert sorted(patch.json["token"]["scopes"]) == ["dashboards", "jobs", "sql"]
    assert (decision.status, decision.parameters["before"]) == ("applied", ["dashboards", "sql"])


def test_restore_of_a_token_with_full_access_in_databricks_patches_nothing(narrowed):
    # An admin already gave all-apis back in Databricks; tokenbot's record still says sql.
    narrowed.org["prod"].set_autoscope(QUARTERLY, "AUTOSCOPE_STATE_USER_SELECTED", scopes=["all-apis"])

    decision = restore_with_the_preselection(narrowed)

    assert patches(narrowed) == []
    assert (decision.status, decision.parameters["refused"]) == ("refused", "stale")
    assert narrowed.org["prod"].tokens()[0]["scopes"] == ["all-apis"]
    told = wait_for(lambda: narrowed.slack.ephemerals(OWNER), what="the answer")
    assert "full access (all-apis) in Databricks now" in told[-1]["text"]


def test_confirm_on_scopes_that_changed_in_databricks_is_refused_and_patches_nothing(narrowed):
    narrowed.org["prod"].set_autoscope(QUARTERLY, "AUTOSCOPE_STATE_USER_SELECTED", scopes=["all-apis"])
    with db.session_scope(narrowed.engine) as session:
        outcome = decisions_service.confirm_scopes(
            session=session,
            gateway_for=gateways(narrowed),
            actor=decisions_service.Actor(OWNER),
            token_pk=token(narrowed).id,
            scopes=["sql"],  # chosen from the `sql` tokenbot showed
        )

    assert (outcome.status, outcome.parameters["refused"]) == ("refused", "stale")
    assert "has scope all-apis in Databricks now, not scope sql" in outcome.message
    assert patches(narrowed) == [] and token(narrowed).scopes == ["all-apis"]


def test_looks_fine_is_recorded_and_keeps_only_restore(narrowed):
    click(narrowed, "token_looks_fine")

    wait_for(lambda: decisions(narrowed, "accept"), what="the decision")
    [decision] = decisions(narrowed, "accept")
    assert (decision.status, decision.actor_slack_id) == ("applied", OWNER)
    assert decision.parameters["deadline_kind"] == "autoscope_enforcement"
    assert decision.parameters["due_date"] == token(narrowed).narrowed_at.date().isoformat()
    told = wait_for(lambda: narrowed.slack.ephemerals(OWNER), what="the answer")
    assert "keeps sql" in told[-1]["text"]
    wait_for(lambda: "Looks fine to" in json.dumps(narrowed_messages(narrowed)[0]["blocks"]))
    text = blocks.as_text(narrowed_messages(narrowed)[0]["blocks"])
    assert "[Restore scopes]" in text and "[Looks fine]" not in text
    assert patches(narrowed) == []

    narrowed.remind()
    assert len(narrowed.slack.messages(OWNER)) == 1


def test_someone_else_cannot_restore(narrowed):
    narrowed.slack.add_user(id="U0EVE", email="eve@example.com", name="Eve")
    [message] = narrowed_messages(narrowed)
    actions = next(b for b in message["blocks"] if b["type"] == "actions")
    narrowed.slack.click(
        narrowed.server.slack_url,
        "U0EVE",
        message["channel"],
        message["ts"],
        "token_restore_scopes",
        block_id=actions["block_id"],
    )

    wait_for(lambda: decisions(narrowed, "restore"), what="the refusal")
    assert [d.status for d in decisions(narrowed, "restore")] == ["refused"]
    assert narrowed.slack.views("U0EVE", open_only=True) == [] and patches(narrowed) == []


# ---------------------------------------------------------------------------------------------
# the builder


def quinns_token(**changes) -> NarrowedToken:
    token = NarrowedToken(
        reference="n1",
        token_pk=1,
        workspace="prod",
        token_id="0123456789abcdef",
        comment="finance quarter close",
        owner="quinn@example.com",
        narrowed_at=datetime(2026, 3, 2, 6, tzinfo=UTC),
        previous_scopes=("all-apis",),
        scopes=("sql",),
        rare_lost={"jobs": date(2025, 12, 12)},
        usage_known=True,
        unmapped_services=("sparkUiProxy",),
    )
    return replace(token, **changes)


def test_the_message_says_what_it_had_has_and_lost():
    token = quinns_token()
    message = NarrowedMessage(
        Recipient(OWNER, tz="Europe/Berlin"), (token,), datetime(2026, 3, 2, 9, tzinfo=UTC)
    )

    text, built = narrowed_message(message)

    assert text == (
        "Auto-scoping narrowed token 0123456789 in prod: had all-apis, now sql; lost jobs, used rarely."
    )
    rendered = blocks.as_text(built)
    assert "Narrowed by auto-scoping on *2 Mar 2026*" in rendered
    assert "`jobs` (Jobs, last used 2025-12-12)" in rendered
    assert "Also called, with no known scope: `sparkUiProxy`" in rendered
    assert "Owner:" not in rendered  # only the admins channel is told whose it is
    assert all(block.to_dict() for block in built)  # within Slack's limits


def test_the_builder_says_a_token_with_no_scope_can_call_nothing():
    token = quinns_token(scopes=(), rare_lost={})
    message = NarrowedMessage(Recipient(OWNER), (token,), datetime(2026, 3, 2, 9, tzinfo=UTC))

    text, built = narrowed_message(message)

    assert text == (
        "Auto-scoping narrowed token 0123456789 in prod to no scope at all: it can call nothing now "
        "(it had all-apis)."
    )
    rendered = blocks.as_text(built)
    assert "it can call no API" in rendered and "This token can call nothing now." in rendered
    assert "now ." not in text + rendered


def test_with_nothing_rare_lost_it_says_the_audit_log_shows_nothing_more():
    token = NarrowedToken(
        reference="n2",
        token_pk=2,
        workspace="dev",
        token_id="abc",
        comment="",
        owner=None,
        narrowed_at=datetime(2026, 3, 2, tzinfo=UTC),
        previous_scopes=("all-apis",),
        scopes=("sql", "jobs"),
        rare_lost={},
        usage_known=False,
        note="no owner",
    )
    message = NarrowedMessage(
        Recipient("C0ADMINS", admins_channel=True, reason="no owner"), (token,), clock.now()
    )

    rendered = blocks.as_text(narrowed_message(message)[1])

    assert "does not read this workspace's audit log" in rendered
    assert "Owner: unknown (no owner)" in rendered
    assert "1 NARROWED TOKEN WITHOUT A REACHABLE OWNER" in rendered
