"""The workspace as the sandbox keeps it (state.py): messages as they now stand, their
timestamps, DMs opened by user id and ephemerals kept per user, seen through real Web API calls."""

from __future__ import annotations

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.sandbox.slack import SlackSandbox
from tests.support.slack_sandbox import ADMIN_CHANNEL, ALICE, OTHER_BOT


def test_posted_updated_and_deleted_messages_show_as_they_now_stand(slack: SlackSandbox, client: WebClient):
    first = client.chat_postMessage(channel=ADMIN_CHANNEL, text="one")
    second = client.chat_postMessage(channel=ADMIN_CHANNEL, text="two", thread_ts=first["ts"])
    client.chat_update(channel=ADMIN_CHANNEL, ts=first["ts"], text="one, edited")
    client.chat_delete(channel=ADMIN_CHANNEL, ts=second["ts"])

    [message] = slack.messages(ADMIN_CHANNEL)
    assert message["text"] == "one, edited"
    assert message["edited"]["user"] == slack.bot_user_id
    assert message["user"] == slack.bot_user_id
    assert message["ts"] == first["ts"]


def test_message_timestamps_are_unique_and_increasing(client: WebClient):
    stamps = [client.chat_postMessage(channel=ADMIN_CHANNEL, text=str(n))["ts"] for n in range(5)]
    assert stamps == sorted(stamps, key=float)
    assert len(set(stamps)) == 5
    assert all(len(ts.split(".")[1]) == 6 for ts in stamps)


def test_posting_to_a_user_id_lands_in_their_dm(slack: SlackSandbox, client: WebClient):
    dm = client.conversations_open(users=ALICE)["channel"]["id"]
    posted = client.chat_postMessage(channel=ALICE, text="hello")

    assert dm.startswith("D")
    assert posted["channel"] == dm
    assert client.conversations_open(users=ALICE)["channel"]["id"] == dm
    assert [m["text"] for m in slack.messages(ALICE)] == ["hello"]
    assert slack.messages(ALICE) == slack.messages(dm)


def test_ephemeral_messages_are_kept_per_user(slack: SlackSandbox, client: WebClient):
    client.chat_postEphemeral(channel=ADMIN_CHANNEL, user=ALICE, text="only you")
    with pytest.raises(SlackApiError) as raised:
        client.chat_postEphemeral(channel=slack.dm_channel(ALICE), user=OTHER_BOT, text="not yours")

    assert [e["text"] for e in slack.ephemerals(ALICE)] == ["only you"]
    assert raised.value.response["error"] == "user_not_in_channel"
    assert slack.messages(ADMIN_CHANNEL) == []
