"""Who uses a token, as the builders show it: the reminder's "Used by", `/tokens show`, and the
Revoke confirmation; unknown agents escaped, and never a guess when the audit log cannot tell."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

from slack_sdk.models.blocks import Block

from bot.domain.clients import Consumer, Coverage, TokenConsumers
from bot.sandbox.slack import validate_blocks
from bot.services.ports import ReminderItem
from bot.slack import blocks
from bot.slack.blocks import commands
from bot.slack.blocks import consumers as consumer_blocks
from bot.slack.blocks.answers import Page
from tests.slack.test_blocks import NOW, view

HOSTILE_AGENT = "<!channel> *bold* <https://evil|click>"


def consumer(client: str, days_ago: float, networks=("20.190.5.0/24",), calls: int = 12) -> Consumer:
    return Consumer(client, tuple(networks), NOW - timedelta(days=90), NOW - timedelta(days=days_ago), calls)


def seen(*found: Consumer, coverage: Coverage = Coverage.OK) -> TokenConsumers:
    return TokenConsumers(found, coverage, NOW - timedelta(hours=2), NOW - timedelta(hours=5))


FIVE = seen(
    consumer("Power BI", 0.1, ("20.190.5.0/24", "20.190.6.0/24", "52.1.2.0/24"), 1234),
    consumer("dbt", 1),
    consumer(HOSTILE_AGENT, 2),
    consumer("Airflow", 20),
    consumer("curl", 60),
)


def item_with(used: TokenConsumers | None) -> ReminderItem:
    token = dataclasses.replace(view(1), consumers=used)
    return ReminderItem("n1", token, token.evaluation.deadlines[0], "7")


def text_of(built) -> str:
    return json.dumps([b.to_dict() for b in built])


def test_the_reminder_shows_three_consumers_then_how_many_more():
    built = blocks.token_blocks(item_with(FIVE), "UTC", NOW, for_admins=False)

    [used_by] = [b for b in built if "Used by" in json.dumps(b.to_dict())]
    text = used_by.to_dict()["elements"][0]["text"]
    assert "*Power BI* from 20.190.5.0/24, 20.190.6.0/24 +1 · 1,234 calls" in text
    assert "*dbt*" in text and "Airflow" not in text
    assert "+2 more (`/tokens show` lists them all)" in text
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text  # an unknown agent is user text
    validate_blocks([b.to_dict() for b in built])


def test_no_used_by_line_when_consumers_were_not_loaded():
    built = blocks.token_blocks(item_with(None), "UTC", NOW, for_admins=False)
    assert "Used by" not in text_of(built)


def test_the_reminder_says_when_usage_data_is_unavailable():
    built = blocks.token_blocks(item_with(seen(coverage=Coverage.NOT_READ)), "UTC", NOW, for_admins=False)
    assert "usage data unavailable (the audit log is not read for this workspace)" in text_of(built)


def test_the_revoke_confirmation_names_who_used_it_in_the_last_7_days():
    built = blocks.token_blocks(item_with(FIVE), "UTC", NOW, for_admins=False)

    confirm = next(
        e["confirm"]["text"]["text"]
        for b in built
        if b.to_dict()["type"] == "actions"
        for e in b.to_dict()["elements"]
        if e["action_id"] == "token_revoke"
    )
    assert "Used in the last 7 days by: Power BI, dbt, &lt;!channel&gt;" in confirm
    assert "Airflow" not in confirm and len(confirm) <= 300


def test_the_revoke_warning_never_guesses():
    assert consumer_blocks.revoke_warning(seen(), NOW) == "No use seen in the last 7 days."
    quiet_but_old = seen(consumer("dbt", 20))
    assert consumer_blocks.revoke_warning(quiet_but_old, NOW) == "No use seen in the last 7 days."
    delayed = TokenConsumers((), Coverage.DELAYED, NOW, NOW - timedelta(days=3))
    assert consumer_blocks.revoke_warning(delayed, NOW).startswith(
        "Usage data unavailable (the audit log is behind"
    )
    assert consumer_blocks.revoke_warning(seen(coverage=Coverage.EMPTY), NOW) == (
        "Usage data unavailable (the audit log had no events)."
    )
    assert consumer_blocks.revoke_warning(None, NOW) == ""
    # what a delayed log did see in the window is still said
    assert (
        consumer_blocks.revoke_warning(seen(consumer("dbt", 3), coverage=Coverage.DELAYED), NOW)
        == "Used in the last 7 days by: dbt."
    )


def test_tokens_show_lists_every_consumer_and_network():
    token = dataclasses.replace(view(1), consumers=FIVE)

    answer = commands.show(token, [], None, "UTC", NOW, Page(1, "show"))

    text = json.dumps(answer.payload()["blocks"])
    assert "*Used by*" in text
    for name in ("Power BI", "dbt", "Airflow", "curl", "52.1.2.0/24"):
        assert name in text
    for block in answer.payload()["blocks"]:
        Block.parse(block).validate_json()


def test_tokens_revoke_says_who_used_it_before_the_button():
    token = dataclasses.replace(view(1), consumers=FIVE)

    answer = commands.revoke_confirmation(token, "leaked", "t1", NOW)

    text = json.dumps(answer.payload()["blocks"])
    assert text.count("Used in the last 7 days by: Power BI, dbt") == 2  # the message and Slack's dialog


def test_a_use_databricks_reports_but_the_audit_log_does_not_tie_is_not_no_use():
    midnight = NOW.replace(hour=0)

    warning = consumer_blocks.revoke_warning(seen(), NOW, last_used_on=midnight - timedelta(days=2))

    assert warning.startswith("Usage data unavailable (Databricks reports a use on")
    assert "ties to no login session" in warning
    assert consumer_blocks.revoke_warning(seen(), NOW, last_used_on=midnight - timedelta(days=30)) == (
        "No use seen in the last 7 days."
    )
    built = blocks.token_blocks(item_with(seen()), "UTC", NOW, for_admins=False)  # used today, per Databricks
    assert "ties to no login session" in text_of(built)
