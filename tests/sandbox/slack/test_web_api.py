"""The Web API methods (web_api.py) through a real `WebClient`: message errors, users and
usergroups, files, and views opened by a click's trigger_id, published, updated and pushed."""

from __future__ import annotations

import time

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import SectionBlock
from slack_sdk.models.views import View

from bot.sandbox.slack import SlackSandbox
from tests.support.slack_sandbox import (
    ADMIN_CHANNEL,
    ALICE,
    BOB_DELETED,
    FOREIGN_CHANNEL,
    OTHER_BOT,
    approval_blocks,
    open_modal_from_click,
    scope_modal,
)


def test_a_message_with_neither_text_nor_blocks_is_no_text(client: WebClient):
    with pytest.raises(SlackApiError) as raised:
        client.api_call("chat.postMessage", json={"channel": ADMIN_CHANNEL})
    assert raised.value.response["error"] == "no_text"


def test_channel_errors(slack: SlackSandbox, client: WebClient):
    cases = {
        "C0NOPE": "channel_not_found",
        FOREIGN_CHANNEL: "not_in_channel",
        BOB_DELETED: "user_disabled",
        OTHER_BOT: "cannot_dm_bot",
    }
    for channel, error in cases.items():
        with pytest.raises(SlackApiError) as raised:
            client.chat_postMessage(channel=channel, text="hi")
        assert raised.value.response["error"] == error, channel
    assert client.conversations_info(channel=ADMIN_CHANNEL)["channel"]["is_member"] is True
    assert client.conversations_info(channel=FOREIGN_CHANNEL)["channel"]["is_member"] is False


def test_updating_an_unknown_message_is_message_not_found(client: WebClient):
    with pytest.raises(SlackApiError) as raised:
        client.chat_update(channel=ADMIN_CHANNEL, ts="1700000000.000100", text="x")
    assert raised.value.response["error"] == "message_not_found"


def test_lookup_by_email_finds_active_users_only(client: WebClient):
    found = client.users_lookupByEmail(email="ALICE@example.com")["user"]
    assert (found["id"], found["profile"]["email"], found["tz"]) == (
        ALICE,
        "alice@example.com",
        "Europe/Paris",
    )

    for email in ("nobody@example.com", "bob@example.com"):  # Slack hides deactivated users here
        with pytest.raises(SlackApiError) as raised:
            client.users_lookupByEmail(email=email)
        assert raised.value.response["error"] == "users_not_found"


def test_users_info_reports_time_zone_and_deactivation(client: WebClient):
    alice = client.users_info(user=ALICE)["user"]
    bob = client.users_info(user=BOB_DELETED)["user"]
    assert alice["tz_offset"] in (3600, 7200) and alice["deleted"] is False
    assert bob["deleted"] is True
    with pytest.raises(SlackApiError) as raised:
        client.users_info(user="U0NOBODY")
    assert raised.value.response["error"] == "user_not_found"


def test_usergroup_members_are_listed(slack: SlackSandbox, client: WebClient):
    slack.add_usergroup(id="S0ADMINS", handle="token-admins", users=[ALICE, BOB_DELETED])
    assert client.usergroups_users_list(usergroup="S0ADMINS")["users"] == [ALICE]
    with pytest.raises(SlackApiError) as raised:
        client.usergroups_users_list(usergroup="S0NOPE")
    assert raised.value.response["error"] == "no_such_subteam"


def test_files_upload_v2_uploads_and_shares_the_file(slack: SlackSandbox, client: WebClient):
    answer = client.files_upload_v2(
        channel=ADMIN_CHANNEL,
        content=b"token_id,owner\nabc,alice\n",
        filename="tokens.csv",
        title="Token report",
        initial_comment="Weekly report",
    )

    [stored] = slack.files()
    assert answer["file"]["id"] == stored["id"]
    assert (stored["title"], stored["content"]) == ("Token report", b"token_id,owner\nabc,alice\n")
    assert stored["channels"] == [ADMIN_CHANNEL]
    [shared] = slack.messages(ADMIN_CHANNEL)
    assert shared["text"] == "Weekly report"
    assert shared["files"][0]["id"] == stored["id"]


def test_a_click_issues_a_trigger_id_that_opens_a_modal_once(slack, client, receiver):
    view_id = open_modal_from_click(slack, client, receiver)

    [modal] = slack.views(ALICE)
    assert (modal["id"], modal["callback_id"], modal["private_metadata"]) == (view_id, "scopes", "token=abc")
    used_trigger = receiver.last_payload()["trigger_id"]
    for trigger_id, error in ((used_trigger, "exchanged_trigger_id"), ("123.456.abc", "invalid_trigger_id")):
        with pytest.raises(SlackApiError) as raised:
            client.views_open(trigger_id=trigger_id, view=scope_modal())
        assert raised.value.response["error"] == error


def test_old_trigger_ids_expire_when_expiry_is_on(slack, client, receiver):
    slack.trigger_ttl = 0.0
    posted = client.chat_postMessage(channel=ALICE, text="t", blocks=approval_blocks())
    slack.click(receiver.url, ALICE, posted["channel"], posted["ts"], "extend")
    time.sleep(0.01)
    with pytest.raises(SlackApiError) as raised:
        client.views_open(trigger_id=receiver.last_payload()["trigger_id"], view=scope_modal())
    assert raised.value.response["error"] == "expired_trigger_id"


def test_home_views_are_published_and_updated_in_place(slack: SlackSandbox, client: WebClient):
    home = View(type="home", blocks=[SectionBlock(text="You have 2 tokens")])
    first = client.views_publish(user_id=ALICE, view=home)["view"]
    second = client.views_publish(
        user_id=ALICE, view=View(type="home", blocks=[SectionBlock(text="1 token")])
    )

    [current] = slack.views(ALICE)
    assert first["id"] == second["view"]["id"] == current["id"]
    assert current["blocks"][0]["text"]["text"] == "1 token"


def test_views_update_and_push_follow_the_modal_stack(slack, client, receiver):
    view_id = open_modal_from_click(slack, client, receiver)
    client.views_update(view_id=view_id, view=scope_modal(title="Updated"))
    posted = client.chat_postMessage(channel=ALICE, text="t", blocks=approval_blocks())
    slack.click(receiver.url, ALICE, posted["channel"], posted["ts"], "revoke")
    pushed = client.views_push(trigger_id=receiver.last_payload()["trigger_id"], view=scope_modal())["view"]

    root, top = slack.views(ALICE)
    assert root["title"]["text"] == "Updated"
    assert (top["previous_view_id"], top["root_view_id"]) == (view_id, view_id)
    assert pushed["id"] == top["id"]
