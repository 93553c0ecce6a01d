"""Where the Slack sandbox copies limits of the real Web API that bite at scale: the scopes the app
is granted, the total size of a message or a view, `trigger_id` expiry and single use, and the
`response_url` allowance. Real slack_sdk clients talk to it, as everywhere."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import yaml
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from bot.sandbox.server import Request, Response, SandboxServer
from bot.sandbox.slack import DEFAULT_SCOPES, SlackSandbox

MANIFEST = Path(__file__).parents[3] / "manifest.yml"
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


# sizes --------------------------------------------------------------------------------------------


def sections(count: int, chars: int) -> list[dict]:
    return [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * chars}} for _ in range(count)]


def test_a_message_whose_blocks_hold_too_much_text_is_msg_blocks_too_long(slack, client):
    client.chat_postMessage(channel=PUBLIC, text="fits", blocks=sections(4, 3000))  # 12,000: the limit
    posted = client.chat_postMessage(channel=PUBLIC, text="small", blocks=sections(1, 10))

    for call in (
        lambda: client.chat_postMessage(channel=PUBLIC, text="big", blocks=sections(5, 2500)),
        lambda: client.chat_update(channel=PUBLIC, ts=posted["ts"], text="big", blocks=sections(5, 2500)),
        lambda: client.chat_postEphemeral(channel=PUBLIC, user=ALICE, text="big", blocks=sections(5, 2500)),
    ):
        assert error_of(call)["error"] == "msg_blocks_too_long"
    assert [m["text"] for m in slack.messages(PUBLIC)] == ["fits", "small"]


def test_block_count_and_field_limits_are_invalid_blocks(client):
    header = [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]
    for blocks in (sections(51, 1), sections(1, 3001), header):
        refused = error_of(lambda blocks=blocks: client.chat_postMessage(channel=PUBLIC, text="t", blocks=blocks))
        assert refused["error"] == "invalid_blocks"


def test_a_view_too_large_is_view_too_large_and_over_100_blocks_is_refused(slack, client):
    big = {"type": "home", "blocks": sections(11, 3000)}
    assert error_of(lambda: client.views_publish(user_id=ALICE, view=big))["error"] == "view_too_large"
    many = {"type": "home", "blocks": sections(101, 1)}
    assert error_of(lambda: client.views_publish(user_id=ALICE, view=many))["error"] == "invalid_arguments"
    client.views_publish(user_id=ALICE, view={"type": "home", "blocks": sections(100, 290)})
    assert len(slack.views(ALICE)[0]["blocks"]) == 100


# trigger_id and response_url ----------------------------------------------------------------------


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def timed() -> Iterator[tuple[SlackSandbox, Clock]]:
    clock = Clock()
    with SlackSandbox(clock=clock) as sandbox:
        sandbox.add_user(id=ALICE, email="alice@example.com", name="alice")
        yield sandbox, clock


class BotStandIn:
    """An HTTP endpoint that acks every driven request, as a bot does, and keeps their forms."""

    def __init__(self) -> None:
        self.forms: list[dict[str, str]] = []
        self.server = SandboxServer("bot", self._receive, lambda fault: {})

    def _receive(self, request: Request) -> Response:
        self.forms.append(dict(parse_qsl(request.body.decode())))
        return Response(200, b"")

    @property
    def url(self) -> str:
        return f"{self.server.base_url}/slack/events"

    def command(self, slack: SlackSandbox) -> dict[str, str]:
        """`/tokens help` typed by Alice: the form the bot receives (trigger_id, response_url)."""
        slack.command(self.url, ALICE, "help")
        return self.forms[-1]


@pytest.fixture
def bot_stand_in() -> Iterator[BotStandIn]:
    stand_in = BotStandIn()
    stand_in.server.start()
    yield stand_in
    stand_in.server.stop()


def test_a_trigger_id_works_for_3_seconds_and_once(timed, bot_stand_in):
    slack, clock = timed
    client = WebClient(token=slack.bot_token, base_url=slack.url)
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "t"}, "blocks": sections(1, 5)}

    fresh, late = (bot_stand_in.command(slack)["trigger_id"] for _ in range(2))
    clock.now += 2.9
    client.views_open(trigger_id=fresh, view=modal)
    assert error_of(lambda: client.views_open(trigger_id=fresh, view=modal))["error"] == "exchanged_trigger_id"
    clock.now += 0.2
    assert error_of(lambda: client.views_open(trigger_id=late, view=modal))["error"] == "expired_trigger_id"


def test_a_response_url_takes_5_posts_within_30_minutes(timed, bot_stand_in):
    slack, clock = timed
    busy, idle = (bot_stand_in.command(slack)["response_url"] for _ in range(2))

    answers = [WebhookClient(busy).send(text=f"answer {n}") for n in range(6)]
    clock.now += 30 * 60 + 1
    expired = WebhookClient(idle).send(text="too late")

    assert [a.status_code for a in answers] == [200] * 5 + [404]
    assert answers[-1].body == "used_url" and (expired.status_code, expired.body) == (404, "expired_url")
    assert [e["text"] for e in slack.ephemerals(ALICE)] == [f"answer {n}" for n in range(5)]


def test_a_private_channel_the_bot_is_not_in_is_channel_not_found(slack, client):
    slack.add_channel(id="G0CLOSED", name="closed", private=True, bot_member=False)
    slack.add_channel(id="C0OPEN", name="open", bot_member=False)

    assert error_of(lambda: client.conversations_info(channel="G0CLOSED"))["error"] == "channel_not_found"
    assert error_of(lambda: client.chat_postMessage(channel="G0CLOSED", text="hi"))["error"] == (
        "channel_not_found"
    )
    assert error_of(lambda: client.chat_postMessage(channel="C0OPEN", text="hi"))["error"] == "not_in_channel"
    assert client.conversations_info(channel="C0OPEN")["channel"]["is_member"] is False
