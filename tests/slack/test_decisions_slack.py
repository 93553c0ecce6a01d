"""Decisions end to end, in both of Slack's modes: the Slack sandbox's driver clicks and submits
(really signed HTTP requests to the bolt app behind uvicorn, or envelopes over Socket Mode), the app acks, the decisions service calls the Databricks sandbox,
and the reminder is updated in place."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot import clock, db
from bot.models import Decision, Exemption, Token
from bot.sandbox.slack import sign
from bot.services import report
from bot.slack import references
from tests.support.bot_server import http_only, running_bot, wait_for
from tests.support.slack_helpers import ADMIN_CHANNEL, ADMIN_USER
from tests.support.world import close_world, make_world, observed_token

OWNER = "U0OWEN"


POLICY = '[policy]\norg_max_inactive_days = 60\norg_max_lifetime_days = 0\nquiet_hours = "off"\n'


@pytest.fixture
def world(tmp_path, monkeypatch, database_url):
    """The shared world, with tokenbot's own inactivity rule on (60 days), so Extend has a deadline."""
    world, stack = make_world(tmp_path, monkeypatch, database_url, policy=POLICY)
    yield world
    close_world(world, stack)


@pytest.fixture
def bot(world, slack_mode):
    world.slack.add_user(id=OWNER, email="owen@example.com", name="Owen", tz="Europe/Berlin")
    world.slack.add_user(id="U0EVE", email="eve@example.com", name="Eve")
    prod = world.org["prod"]
    owner = prod.add_user(user_name="owen@example.com")
    observed_token(prod, owner, "tok-observed", 5)
    prod.add_token(
        token_id="tok-idle",
        owner_id=owner,
        comment="old report",
        created_at=clock.now() - timedelta(days=300),
        last_used_at=clock.now() - timedelta(days=55),
        scopes=["sql"],
    )
    world.sync()
    world.remind()
    with running_bot(world.settings, world.engine, slack_mode) as server:
        world.server = server
        yield world


def reminder(world):
    [message] = world.slack.messages(OWNER)
    return message


def click(world, action_id, token_id, user=OWNER, **kwargs):
    message = reminder(world)
    reference = _reference(message, token_id)
    return world.slack.click(
        world.server.slack_url,
        user,
        message["channel"],
        message["ts"],
        action_id,
        block_id=f"actions:{reference}",
        **kwargs,
        mode=world.server.mode,
    )


def _reference(message, token_id):
    for block in message["blocks"]:
        if block.get("block_id", "").startswith("token:") and token_id[:10] in json.dumps(block):
            return block["block_id"].removeprefix("token:")
    raise AssertionError(f"{token_id} is not in the reminder")


def told(world, user, words):
    """The bot answers after the decision is recorded: wait for the answer that says `words`."""
    wait_for(lambda: any(words.lower() in e["text"].lower() for e in world.slack.ephemerals(user)),
             what=f"an answer saying {words!r}")


def decisions(world, action=None):
    """The decisions recorded (a claim whose Databricks call is still under way is not, yet)."""
    with db.session_scope(world.engine) as session:
        query = select(Decision).where(Decision.status != "in_progress").order_by(Decision.id)
        if action:
            query = query.where(Decision.action == action)
        return list(session.execute(query).scalars())


def databricks_calls(world, method, fragment="/token-management/tokens/"):
    return [r for r in world.org["prod"].requests if r.method == method and fragment in r.path]


def test_revoke_deletes_the_token_records_it_and_updates_the_reminder(bot):
    response = click(bot, "token_revoke", "tok-idle")

    assert response.status == 200
    wait_for(lambda: decisions(bot, "revoke"), what="the revoke decision")
    assert len(databricks_calls(bot, "DELETE")) == 1
    [decision] = decisions(bot, "revoke")
    assert (decision.status, decision.actor_slack_id, decision.actor_role) == ("applied", OWNER, "owner")
    wait_for(lambda: "Revoked by" in json.dumps(reminder(bot)["blocks"]), what="the message update")
    blocks = reminder(bot)["blocks"]
    idle_ref = _reference(reminder(bot), "tok-idle")
    assert not any(b.get("block_id") == f"actions:{idle_ref}" for b in blocks)  # its buttons are gone
    observed_ref = _reference(reminder(bot), "tok-observed")
    assert any(b.get("block_id") == f"actions:{observed_ref}" for b in blocks)  # the others stay
    told(bot, OWNER, "Revoked")


def test_someone_else_is_refused_and_nothing_is_called(bot):
    click(bot, "token_revoke", "tok-idle", user="U0EVE")

    wait_for(lambda: decisions(bot), what="the refused decision")
    [decision] = decisions(bot)
    assert (decision.status, decision.actor_slack_id) == ("refused", "U0EVE")
    assert databricks_calls(bot, "DELETE") == []
    told = wait_for(lambda: bot.slack.ephemerals("U0EVE") or bot.slack.messages("U0EVE"))
    assert "Only the token's owner or an admin" in told[-1]["text"]


@http_only
def test_forged_requests_are_rejected_and_change_nothing(bot):
    assert click(bot, "token_revoke", "tok-idle", bad_signature=True).status == 401
    assert click(bot, "token_revoke", "tok-idle", timestamp=time.time() - 3600).status == 401
    body = "payload=" + json.dumps({"type": "block_actions", "user": {"id": OWNER}})
    stamp = str(int(time.time()))
    signature = sign(bot.slack.signing_secret, stamp, body)
    tampered = urllib.request.Request(
        bot.server.slack_url,
        data=(body + "x").encode(),
        method="POST",
        headers={
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(tampered, timeout=30)
    assert caught.value.code == 401
    time.sleep(0.3)
    assert decisions(bot) == [] and databricks_calls(bot, "DELETE") == []


def test_a_double_click_and_a_slack_retry_make_one_delete(bot):
    click(bot, "token_revoke", "tok-idle")
    click(bot, "token_revoke", "tok-idle")
    click(bot, "token_revoke", "tok-idle", retry_num=1)

    wait_for(lambda: len(decisions(bot, "revoke")) == 3, what="three attempts recorded")
    assert len(databricks_calls(bot, "DELETE")) == 1
    assert [d.status for d in decisions(bot, "revoke")].count("applied") == 1


def test_a_databricks_outage_fails_clearly_and_retry_applies_it(bot):
    bot.org["prod"].fail("DELETE", r"/token-management/tokens/", 503, times=100)
    click(bot, "token_revoke", "tok-idle")
    wait_for(lambda: decisions(bot, "revoke"), what="the failed decision")
    [failed] = decisions(bot, "revoke")
    assert failed.status == "failed" and "unavailable" in failed.error
    ephemeral = wait_for(
        lambda: [e for e in bot.slack.ephemerals(OWNER) if "Retry" in json.dumps(e["blocks"])]
    )
    bot.org["prod"].clear_faults()

    retry = ephemeral[-1]
    bot.slack.click(
        bot.server.slack_url, OWNER, retry["channel"], retry["ts"], "decision_retry", mode=bot.server.mode
    )

    wait_for(
        lambda: [d for d in decisions(bot, "revoke") if d.status == "applied"], what="the retried revoke"
    )
    with db.session_scope(bot.engine) as session:
        token = session.execute(select(Token).where(Token.token_id == "tok-idle")).scalar_one()
    assert token.gone_reason == "revoked"


def test_a_permission_error_is_recorded_as_failed_with_plain_words(bot):
    bot.org["prod"].fail("DELETE", r"/token-management/tokens/", 403)
    click(bot, "token_revoke", "tok-idle")
    wait_for(lambda: decisions(bot, "revoke"), what="the failed decision")
    [failed] = decisions(bot, "revoke")
    assert failed.status == "failed" and "permission denied" in failed.error
    told(bot, OWNER, "workspace admin")


def test_confirm_scopes_opens_a_preselected_modal_and_patches_on_submit(bot):
    click(bot, "token_confirm_scopes", "tok-observed")
    modal = wait_for(lambda: bot.slack.views(OWNER, open_only=True), what="the modal")[-1]
    select_block = next(b for b in modal["blocks"] if b.get("block_id") == "scopes")
    assert [o["value"] for o in select_block["element"]["initial_options"]] == ["sql"]

    response = bot.slack.submit(
        bot.server.slack_url,
        OWNER,
        modal["id"],
        {"scopes": {"choose": ["sql", "jobs"]}},
        mode=bot.server.mode,
    )

    assert response.status == 200
    wait_for(lambda: decisions(bot, "confirm_scopes"), what="the decision")
    [patch] = databricks_calls(bot, "PATCH")
    assert patch.json["update_mask"] == "scopes"
    assert sorted(patch.json["token"]["scopes"]) == ["jobs", "sql"]
    assert decisions(bot, "confirm_scopes")[0].status == "applied"


def test_an_empty_scope_choice_is_a_field_error_in_the_modal(bot):
    click(bot, "token_confirm_scopes", "tok-observed")
    modal = wait_for(lambda: bot.slack.views(OWNER, open_only=True))[-1]

    response = bot.slack.submit(
        bot.server.slack_url, OWNER, modal["id"], {"scopes": {"choose": []}}, mode=bot.server.mode
    )

    assert response.json()["response_action"] == "errors"
    assert "scopes" in response.json()["errors"]
    assert decisions(bot) == [] and databricks_calls(bot, "PATCH") == []


def test_privileged_scopes_wait_for_an_admin_who_approves(bot):
    click(bot, "token_confirm_scopes", "tok-observed")
    modal = wait_for(lambda: bot.slack.views(OWNER, open_only=True))[-1]
    bot.slack.submit(
        bot.server.slack_url,
        OWNER,
        modal["id"],
        {"scopes": {"choose": ["sql", "authentication"]}},
        mode=bot.server.mode,
    )

    request = wait_for(lambda: bot.slack.messages(ADMIN_CHANNEL), what="the approval request")[-1]
    assert "Approval needed" in request["text"] and databricks_calls(bot, "PATCH") == []
    bot.slack.click(
        bot.server.slack_url, ADMIN_USER, ADMIN_CHANNEL, request["ts"], "decision_approve", mode=bot.server.mode
    )

    wait_for(lambda: databricks_calls(bot, "PATCH"), what="the approved PATCH")
    wait_for(
        lambda: "decision_approve" not in json.dumps(bot.slack.messages(ADMIN_CHANNEL)[-1]["blocks"]),
        what="the approval message to lose its buttons",
    )
    assert [d.status for d in decisions(bot, "confirm_scopes")][:1] == ["approved"]


def test_extend_creates_an_exemption_for_tokenbots_policy(bot):
    message = reminder(bot)
    idle_ref = _reference(message, "tok-idle")
    bot.slack.click(
        bot.server.slack_url,
        OWNER,
        message["channel"],
        message["ts"],
        "token_extend",
        block_id=f"actions:{idle_ref}",
        mode=bot.server.mode,
    )
    modal = wait_for(lambda: bot.slack.views(OWNER, open_only=True))[-1]

    bot.slack.submit(
        bot.server.slack_url,
        OWNER,
        modal["id"],
        {"days": {"days": "10"}, "reason": {"reason": "quarter close"}},
        mode=bot.server.mode,
    )

    wait_for(lambda: decisions(bot, "extend"), what="the extension")
    with db.session_scope(bot.engine) as session:
        [exemption] = session.execute(select(Exemption)).scalars().all()
    assert exemption.deadline_kind == "org_policy" and exemption.approved_by == OWNER


def test_accept_and_snooze_are_recorded_for_their_deadline(bot):
    click(bot, "token_accept", "tok-observed")
    wait_for(lambda: decisions(bot, "accept"))
    click(bot, "token_snooze", "tok-idle")
    wait_for(lambda: decisions(bot, "snooze"))

    accepted, snoozed = decisions(bot, "accept")[0], decisions(bot, "snooze")[0]
    assert (accepted.status, accepted.parameters["deadline_kind"]) == ("applied", "autoscope_enforcement")
    assert (snoozed.status, snoozed.parameters["deadline_kind"]) == ("applied", "org_policy")
    assert "until" in snoozed.parameters
    wait_for(lambda: "Accepted by" in json.dumps(reminder(bot)["blocks"]), what="the accepted annotation")


def test_not_mine_goes_to_the_admins_who_pick_the_owner(bot):
    bot.slack.add_user(id="U0REAL", email="real@example.com", name="Real Owner")
    click(bot, "token_not_mine", "tok-idle")
    wanted = wait_for(lambda: [m for m in bot.slack.messages(ADMIN_CHANNEL) if "Owner wanted" in m["text"]])[
        -1
    ]
    picker = next(b for b in wanted["blocks"] if b["type"] == "actions")

    bot.slack.click(
        bot.server.slack_url,
        ADMIN_USER,
        ADMIN_CHANNEL,
        wanted["ts"],
        "token_assign_owner",
        value="U0REAL",
        block_id=picker["block_id"],
        mode=bot.server.mode,
    )

    wait_for(lambda: decisions(bot, "assign_owner"), what="the assignment")
    assert decisions(bot, "assign_owner")[0].status == "applied"
    assert decisions(bot, "not_mine")[0].status in ("requested", "approved")
    wait_for(
        lambda: "token_assign_owner" not in json.dumps(bot.slack.messages(ADMIN_CHANNEL)[-1]["blocks"]),
        what="the request to close",
    )


def test_the_click_is_answered_fast_even_when_databricks_is_slow(bot):
    bot.org["prod"].fail("*", r"/token-management/", 0, times=10, delay=2.0)
    response = click(bot, "token_revoke", "tok-idle")
    assert response.status == 200
    assert response.elapsed < 2.0  # the ack does not wait for Databricks' 2 s
    wait_for(lambda: decisions(bot, "revoke"))


def test_in_dry_run_decisions_are_recorded_and_databricks_is_not_touched(world, monkeypatch):
    world.slack.add_user(id=OWNER, email="owen@example.com", name="Owen")
    prod = world.org["prod"]
    observed_token(prod, prod.add_user(user_name="owen@example.com"), "tok-dry", 5)
    world.sync()
    world.remind()
    monkeypatch.setenv("TOKENBOT_DRY_RUN", "1")
    with running_bot(world.settings, world.engine) as server:
        world.server = server
        click(world, "token_revoke", "tok-dry")
        wait_for(lambda: decisions(world, "revoke"))

    [decision] = decisions(world, "revoke")
    assert decision.status == "applied" and decision.parameters["dry_run"] is True
    assert databricks_calls(world, "DELETE") == []
    told(world, OWNER, "dry run")


# trust: serial self-extension, made-up deadlines -------------------------------------------------


def org_deadline(world, token_id):
    """tokenbot's own policy deadline of the token, as it computes it now."""
    with db.session_scope(world.engine) as session:
        pk = session.execute(select(Token.id).where(Token.token_id == token_id)).scalar_one()
        [view] = report.token_views(session=session, policy=world.settings.policy, now=clock.now(), token_pks=[pk])
    [deadline] = [d for d in view.evaluation.deadlines if d.kind == "org_policy"]
    return pk, deadline.due_at


def extend_clicked(world, shown, value, days="30"):
    """The owner clicks Extend (the button carrying `value`) on the reminder as first shown, and
    submits the modal if one opens; returns the new decision."""
    before = len(decisions(world, "extend"))
    opened = len(world.slack.views(OWNER, open_only=True))
    world.slack.click(
        world.server.slack_url, OWNER, shown["channel"], shown["ts"], "token_extend", value=value,
        block_id=f"actions:{_reference(shown, 'tok-idle')}", as_shown=shown, mode=world.server.mode,
    )
    found = wait_for(
        lambda: len(decisions(world, "extend")) > before or len(world.slack.views(OWNER, open_only=True)) > opened,
        what="a modal or a decision",
    )
    if len(decisions(world, "extend")) == before and found:
        modal = world.slack.views(OWNER, open_only=True)[-1]
        world.slack.submit(
            world.server.slack_url, OWNER, modal["id"], {"days": {"days": days}, "reason": {"reason": "busy"}},
            mode=world.server.mode,
        )
        wait_for(lambda: len(decisions(world, "extend")) > before, what="the extension")
    return decisions(world, "extend")[-1]


def test_four_extend_clicks_in_a_row_stop_at_the_total_limit_and_ask_the_admins(bot):
    shown = json.loads(json.dumps(reminder(bot)))
    pk, original = org_deadline(bot, "tok-idle")

    results = []
    for _ in range(4):  # each click "from the new deadline", as /tokens mine or the App Home show it
        _, due = org_deadline(bot, "tok-idle")
        results.append(extend_clicked(bot, shown, references.for_token(pk, "org_policy", due.date())))

    assert [r.status for r in results[:2]] == ["applied", "applied"]
    assert results[2].status == "requested" and results[3].parameters.get("refused") == "duplicate"
    assert org_deadline(bot, "tok-idle")[1] == original + timedelta(days=60)
    request = wait_for(
        lambda: [m for m in bot.slack.messages(ADMIN_CHANNEL) if "Approval needed" in m["text"]],
        what="the admins to be asked",
    )[-1]
    asked_until = (original + timedelta(days=90)).date().isoformat()
    assert f"until {asked_until} (the policy's own deadline: {original.date().isoformat()})" in request["text"]
    bot.slack.click(
        bot.server.slack_url, ADMIN_USER, ADMIN_CHANNEL, request["ts"], "decision_deny", mode=bot.server.mode
    )
    wait_for(lambda: decisions(bot, "extend")[2].status == "denied", what="the denial")
    assert org_deadline(bot, "tok-idle")[1] == original + timedelta(days=60)


def test_an_extend_button_with_a_made_up_date_is_refused_and_the_reminder_redrawn(bot):
    shown = json.loads(json.dumps(reminder(bot)))
    pk, _ = org_deadline(bot, "tok-idle")
    updates = len(bot.slack.calls("chat.update"))

    refused = extend_clicked(bot, shown, f"t{pk}:org_policy:2199-01-01")

    assert (refused.status, refused.parameters["refused"]) == ("refused", "stale_reference")
    assert bot.slack.views(OWNER, open_only=True) == []  # no form for a deadline that does not exist
    with db.session_scope(bot.engine) as session:
        assert session.execute(select(Exemption)).scalars().all() == []
    told(bot, OWNER, "out of date")
    wait_for(lambda: len(bot.slack.calls("chat.update")) > updates, what="the reminder to be redrawn")


@pytest.mark.parametrize(("action_id", "action"), [("token_confirm_scopes", "confirm_scopes"), ("token_accept", "accept")])
def test_any_button_naming_a_deadline_tokenbot_does_not_compute_is_refused(bot, action_id, action):
    message = reminder(bot)
    with db.session_scope(bot.engine) as session:
        pk = session.execute(select(Token.id).where(Token.token_id == "tok-observed")).scalar_one()

    bot.slack.click(
        bot.server.slack_url, OWNER, message["channel"], message["ts"], action_id,
        value=f"t{pk}:autoscope_enforcement:2030-01-01", block_id=f"actions:{_reference(message, 'tok-observed')}",
        mode=bot.server.mode,
    )

    [refused] = wait_for(lambda: decisions(bot, action), what="the refusal")
    assert (refused.status, refused.parameters["refused"]) == ("refused", "stale_reference")
    assert bot.slack.views(OWNER, open_only=True) == [] and databricks_calls(bot, "PATCH") == []
    told(bot, OWNER, "out of date")
