"""Where the Slack sandbox copies limits of the real Web API that bite at scale: the scopes the app
is granted, the total size of a message or a view, `trigger_id` expiry and single use, and the
`response_url` allowance. Real slack_sdk clients talk to it, as everywhere."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.sandbox.slack import DEFAULT_SCOPES, SlackSandbox

MANIFEST = Path(__file__).parent.parent.parent / "manifest.yml"
ALICE = "U0ALICE"
PUBLIC = "C0PUBLIC"
PRIVATE = "G0PRIVATE"


@pytest.fixture
def slack() -> Iterator[SlackSandbox]:
    with SlackSandbox() as sandbox:
        sandbox.add_user(id=ALICE, email="alice@example.com", name="alice")
        sandbox.add_channel(id=PUBLIC, name="public")
        sandbox.add_channel(id=PRIVATE, name="secret", private=True)
        yield sandbox


@pytest.fixture
def client(slack: SlackSandbox) -> WebClient:
    return WebClient(token=slack.bot_token, base_url=slack.url)


def error_of(call) -> dict:
    with pytest.raises(SlackApiError) as raised:
        call()
    return raised.value.response.data


# scopes -------------------------------------------------------------------------------------------


def test_the_sandbox_grants_exactly_the_scopes_of_the_manifest(client: WebClient):
    manifest = yaml.safe_load(MANIFEST.read_text())["oauth_config"]["scopes"]["bot"]
    granted = client.auth_test().headers["x-oauth-scopes"].split(",")
    assert sorted(granted) == sorted(manifest) == sorted(DEFAULT_SCOPES)


def test_conversations_info_needs_the_read_scope_of_that_kind_of_conversation(slack, client):
    dm = client.conversations_open(users=ALICE)["channel"]["id"]
    assert client.conversations_info(channel=PUBLIC)["channel"]["name"] == "public"
    assert client.conversations_info(channel=PRIVATE)["channel"]["is_private"] is True

    refused = error_of(lambda: client.conversations_info(channel=dm))

    assert (refused["error"], refused["needed"]) == ("missing_scope", "im:read")
    assert "im:read" not in refused["provided"].split(",")


def test_a_private_channel_needs_groups_read():
    with SlackSandbox(scopes=["channels:read"]) as slack:
        slack.add_channel(id=PRIVATE, name="secret", private=True)
        client = WebClient(token=slack.bot_token, base_url=slack.url)
        refused = error_of(lambda: client.conversations_info(channel=PRIVATE))
    assert (refused["error"], refused["needed"], refused["provided"]) == (
        "missing_scope",
        "groups:read",
        "channels:read",
    )
