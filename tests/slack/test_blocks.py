"""The Block Kit builders, called directly: every message validates and stays within limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk.models.blocks import Block

from bot.domain.policy import Policy, evaluate
from bot.domain.tokens import TokenFacts
from bot.services.ports import Recipient, ReminderItem, ReminderMessage
from bot.services.report import TokenView
from bot.slack import blocks

NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)


def view(
    index: int = 0,
    comment: str = "nightly etl",
    scopes=("all-apis",),
    state="AUTOSCOPE_STATE_RUNNING",
    days_left: int = 5,
) -> TokenView:
    created = NOW - timedelta(days=30 - days_left)
    facts = TokenFacts(
        workspace="prod",
        token_id=f"{index:064x}",
        owner_kind="user",
        owner_active=True,
        owner_resolved=True,
        comment=comment,
        created_at=created,
        expires_at=None,
        last_used_on=NOW.replace(hour=0),
        scopes=tuple(scopes),
        inferred_scopes=("sql",),
        autoscope_state=state,
        observation_started_at=created,
        enforcement_at=None,
        workspace_max_lifetime_days=730,
    )
    return TokenView(
        pk=index,
        workspace="prod",
        token_id=facts.token_id,
        owner_id="1",
        owner="a@example.com",
        owner_name="A",
        owner_kind="user",
        owner_slack_id="U1",
        comment=comment,
        created_at=created,
        expires_at=None,
        last_used_on=facts.last_used_on,
        scopes=facts.scopes,
        inferred_scopes=facts.inferred_scopes,
        autoscope_state=state,
        evaluation=evaluate(facts, Policy(), NOW),
    )


def message(count: int, admins: bool = False, escalation: bool = False, **kwargs) -> ReminderMessage:
    items = []
    for index in range(count):
        token = view(index, days_left=1 + index % 9, **kwargs)
        for deadline in token.evaluation.deadlines[:2]:
            items.append(
                ReminderItem(
                    reference=f"{index}-{deadline.kind}",
                    view=token,
                    deadline=deadline,
                    step="7",
                    note="no owner" if admins else None,
                )
            )
    recipient = Recipient("C0ADMIN" if admins else "U1", tz="Asia/Tokyo", admins_channel=admins)
    return ReminderMessage(recipient, tuple(items), NOW, escalation=escalation)


@pytest.mark.parametrize("count", [1, 3, 12, 40, 80])
@pytest.mark.parametrize(("admins", "escalation"), [(False, False), (True, False), (True, True)])
def test_every_reminder_validates_and_stays_under_50_blocks(count, admins, escalation):
    text, built = blocks.reminder_message(message(count, admins, escalation))
    assert text and len(built) <= 50
    for block in built:
        Block.parse(block.to_dict()).validate_json()


def test_the_nearest_deadline_comes_first_and_in_the_readers_time_zone():
    text, built = blocks.reminder_message(message(3))
    sections = [b.to_dict()["text"]["text"] for b in built if b.to_dict()["type"] == "section"]
    token_sections = [s for s in sections if "`" in s]
    assert "in 1 day" in token_sections[0]
    assert "JST" in token_sections[0]
    assert text.startswith("6 of your Databricks tokens will change soon")


def test_user_text_cannot_mention_or_link():
    _, built = blocks.reminder_message(message(1, comment="<!channel> <@U999> <https://evil|click> & co"))
    rendered = str([b.to_dict() for b in built])
    assert "<!channel>" not in rendered and "<@U999>" not in rendered and "<https://evil" not in rendered
    assert "&lt;!channel&gt;" in rendered


MARKUP = "*bold* _it_ ~gone~ `code` https://evil.example #general"


def test_markup_in_a_comment_is_shown_as_written():
    _, built = blocks.reminder_message(message(1, comment=MARKUP))
    [section] = [b.to_dict() for b in built if b.to_dict().get("block_id", "").startswith("token:")][:1]

    text = section["text"]["text"]
    zw = blocks.ZERO_WIDTH_SPACE
    for mark in "*_~`":  # every formatting character of the comment fenced, so none pairs up
        assert f"{zw}{mark}{zw}" in text
    assert f"{zw}*{zw}bold{zw}*{zw}" in text and "`code`" not in text
    assert section["text"]["verbatim"] is True  # no auto-link of the bare URL or #general
    assert MARKUP in blocks.as_text(built)  # the terminal shows it as typed


def test_service_messages_are_escaped_once_with_their_mentions():
    [section] = [b.to_dict() for b in blocks.outcome_blocks("<@U0ADA> revoked token x (<!here> & *co*)")]

    text = section["text"]["text"]
    assert text.startswith("<@U0ADA> revoked") and "&lt;!here&gt; &amp; " in text and "&amp;lt;" not in text
    assert blocks.code("a_b*c") == "`a_b*c`"  # inside code nothing formats; ids copy as they are


def test_buttons_carry_only_the_opaque_reference():
    reminder = message(1)
    _, built = blocks.reminder_message(reminder)
    actions = [b.to_dict() for b in built if b.to_dict()["type"] == "actions"]
    values = {element["value"] for block in actions for element in block["elements"]}
    assert values == {item.reference for item in reminder.items}
    revoke = next(e for e in actions[0]["elements"] if e["action_id"] == "token_revoke")
    assert revoke["confirm"]["confirm"]["text"] == "Revoke"


def test_admin_messages_name_the_owner_and_the_reason():
    _, built = blocks.reminder_message(message(1, admins=True))
    assert "Owner: a@example.com (no owner)" in str([b.to_dict() for b in built])


def test_text_preview_is_readable():
    _, built = blocks.reminder_message(message(1))
    preview = blocks.as_text(built)
    assert preview.startswith("2 OF YOUR DATABRICKS TOKENS WILL CHANGE SOON")
    assert "[Confirm scopes] [Accept] [Revoke] [Snooze a day] [Not mine]" in preview


def test_the_fast_json_report_says_exactly_what_the_contract_rows_say():
    """`contract_json` fills a template for speed; it must equal `json.dumps` of `contract_rows`."""
    import json

    from bot.services.report import contract_json, contract_rows

    views = [view(0, comment='quote " backslash \\ newline \n tab \t emoji 🎉 <!channel>'),
             view(1, comment="", scopes=(), state=None), view(2, state="AUTOSCOPE_STATE_SOMETHING_NEW")]
    fast = [json.loads(line) for line in contract_json(views, Policy(), NOW)]
    assert fast == list(contract_rows(views, Policy(), NOW))
    assert [line for line in contract_json(views, Policy(), NOW)] == [
        json.dumps(row) for row in contract_rows(views, Policy(), NOW)]
