"""The Slack sandbox speaks Slack well enough for the real slack_sdk and slack_bolt clients.

Web API calls go through a real `WebClient`; the driver's requests are received by a throwaway HTTP
server (or a real bolt app) and checked with slack_sdk's own `SignatureVerifier`.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs

import pytest
from slack_bolt import App, BoltRequest
from slack_bolt.error import BoltError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    SectionBlock,
    StaticMultiSelectElement,
)
from slack_sdk.models.views import View
from slack_sdk.signature import SignatureVerifier

from bot.sandbox.server import Request, Response, SandboxServer
from bot.sandbox.slack import SlackSandbox

ALICE = "U0ALICE"
BOB_DELETED = "U0BOB"
OTHER_BOT = "U0OTHERBOT"
ADMIN_CHANNEL = "C0ADMIN"
FOREIGN_CHANNEL = "C0FOREIGN"


# fixtures and helpers ----------------------------------------------------------------------------


@pytest.fixture
def slack() -> Iterator[SlackSandbox]:
    with SlackSandbox() as sandbox:
        sandbox.add_user(id=ALICE, email="alice@example.com", name="alice", tz="Europe/Paris")
        sandbox.add_user(id=BOB_DELETED, email="bob@example.com", name="bob", deleted=True)
        sandbox.add_user(id=OTHER_BOT, email=None, name="otherbot", is_bot=True)
        sandbox.add_channel(id=ADMIN_CHANNEL, name="token-admins")
        sandbox.add_channel(id=FOREIGN_CHANNEL, name="random", members=[ALICE])
        yield sandbox


@pytest.fixture
def client(slack: SlackSandbox) -> WebClient:
    return WebClient(token=slack.bot_token, base_url=slack.url)


class Receiver:
    """A throwaway HTTP endpoint standing in for the bot: records what the driver sends."""

    def __init__(self) -> None:
        self.answer: Callable[[Request], Response] = lambda request: Response(200, b"")
        self.server = SandboxServer("receiver", lambda request: self.answer(request), lambda fault: {})

    @property
    def url(self) -> str:
        return f"{self.server.base_url}/slack/events"

    @property
    def last(self) -> Request:
        return self.server.requests[-1]

    def last_payload(self) -> dict[str, Any]:
        return json.loads(parse_qs(self.last.body.decode())["payload"][0])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.server.start()
    yield receiver
    receiver.server.stop()


def eventually(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Wait for work a bolt listener does after ack()."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.02)


def approval_blocks() -> list[dict[str, Any]]:
    return [
        SectionBlock(text=MarkdownTextObject(text="Token *abc* expires soon")).to_dict(),
        ActionsBlock(
            block_id="token-actions",
            elements=[
                ButtonElement(text="Extend", action_id="extend", value="abc:30", style="primary"),
                ButtonElement(text="Revoke", action_id="revoke", value="abc", style="danger"),
            ],
        ).to_dict(),
    ]


def scope_modal(**overrides: Any) -> View:
    fields: dict[str, Any] = {
        "type": "modal",
        "callback_id": "scopes",
        "private_metadata": "token=abc",
        "title": "Choose scopes",
        "submit": "Save",
        "blocks": [
            InputBlock(
                block_id="scopes",
                label="Scopes",
                element=StaticMultiSelectElement(
                    action_id="pick",
                    placeholder="Pick",
                    options=[Option(value="sql", text="SQL"), Option(value="jobs", text="Jobs")],
                ),
            ),
            InputBlock(block_id="reason", label="Why", element=PlainTextInputElement(action_id="text")),
        ],
    }
    return View(**(fields | overrides))


def open_modal_from_click(slack: SlackSandbox, client: WebClient, receiver: Receiver) -> str:
    posted = client.chat_postMessage(channel=ALICE, text="Token abc", blocks=approval_blocks())
    slack.click(receiver.url, ALICE, posted["channel"], posted["ts"], "extend")
    trigger_id = receiver.last_payload()["trigger_id"]
    return client.views_open(trigger_id=trigger_id, view=scope_modal())["view"]["id"]


# Web API: messages -------------------------------------------------------------------------------


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


def test_slack_sdk_model_blocks_are_accepted(slack: SlackSandbox, client: WebClient):
    blocks = [
        HeaderBlock(text="Tokens expiring"),
        DividerBlock(),
        SectionBlock(
            text=MarkdownTextObject(text="*abc*"), accessory=ButtonElement(text="Open", action_id="o")
        ),
        ContextBlock(elements=[MarkdownTextObject(text="workspace prod")]),
        InputBlock(
            label="Scopes",
            element=StaticMultiSelectElement(action_id="s", options=[Option(value="sql", text="SQL")]),
        ),
        *approval_blocks(),
    ]
    posted = client.chat_postMessage(channel=ADMIN_CHANNEL, text="fallback", blocks=blocks)

    stored = slack.messages(ADMIN_CHANNEL)[0]["blocks"]
    assert [b["type"] for b in stored] == [
        "header",
        "divider",
        "section",
        "context",
        "input",
        "section",
        "actions",
    ]
    assert all(b["block_id"] for b in stored)  # Slack fills in missing block ids
    assert posted["message"]["blocks"] == stored


def test_more_than_50_blocks_are_refused_with_invalid_blocks(client: WebClient):
    blocks = [DividerBlock() for _ in range(51)]
    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel=ADMIN_CHANNEL, text="too many", blocks=blocks)
    assert raised.value.response["error"] == "invalid_blocks"
    assert "no more than 50 items allowed [json-pointer:/blocks]" in raised.value.response["errors"]


@pytest.mark.parametrize(
    ("block", "complaint"),
    [
        ({"type": "carousel"}, "unsupported type: carousel"),
        (
            {"type": "header", "text": {"type": "plain_text", "text": "x" * 151}},
            "must be less than 151 characters",
        ),
        ({"type": "header", "text": {"type": "mrkdwn", "text": "x"}}, "must be one of: plain_text"),
        ({"type": "section"}, "must provide one of: text, fields"),
        ({"type": "actions"}, "missing required field: elements"),
        (
            {
                "type": "actions",
                "elements": [{"type": "button", "text": {"type": "plain_text", "text": "b" * 76}}],
            },
            "must be less than 76 characters",
        ),
        (
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "static_select",
                        "action_id": "s",
                        "options": [
                            {"text": {"type": "plain_text", "text": "o"}, "value": str(n)} for n in range(101)
                        ],
                    }
                ],
            },
            "no more than 100 items allowed",
        ),
        (
            {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}},
            "must be less than 3001 characters",
        ),
    ],
)
def test_malformed_blocks_are_refused(client: WebClient, block: dict[str, Any], complaint: str):
    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel=ADMIN_CHANNEL, text="x", blocks=[block])
    assert raised.value.response["error"] == "invalid_blocks"
    assert any(complaint in error for error in raised.value.response["errors"])


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


def test_ephemeral_messages_are_kept_per_user(slack: SlackSandbox, client: WebClient):
    client.chat_postEphemeral(channel=ADMIN_CHANNEL, user=ALICE, text="only you")
    with pytest.raises(SlackApiError) as raised:
        client.chat_postEphemeral(channel=slack.dm_channel(ALICE), user=OTHER_BOT, text="not yours")

    assert [e["text"] for e in slack.ephemerals(ALICE)] == ["only you"]
    assert raised.value.response["error"] == "user_not_in_channel"
    assert slack.messages(ADMIN_CHANNEL) == []


# Web API: users, auth, scopes, unknown methods ---------------------------------------------------


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


def test_a_wrong_or_missing_token_is_refused(slack: SlackSandbox):
    with pytest.raises(SlackApiError) as wrong:
        WebClient(token="xoxb-wrong", base_url=slack.url).auth_test()
    with pytest.raises(SlackApiError) as missing:
        WebClient(base_url=slack.url).auth_test()
    assert wrong.value.response["error"] == "invalid_auth"
    assert missing.value.response["error"] == "not_authed"


def test_auth_test_names_the_bot_and_its_scopes(slack: SlackSandbox, client: WebClient):
    answer = client.auth_test()
    assert (answer["user_id"], answer["bot_id"], answer["team_id"]) == (
        slack.bot_user_id,
        slack.bot_id,
        slack.team_id,
    )
    assert "chat:write" in answer.headers["x-oauth-scopes"].split(",")


def test_a_method_needing_an_ungranted_scope_is_missing_scope():
    with SlackSandbox(scopes=["chat:write"]) as slack:
        client = WebClient(token=slack.bot_token, base_url=slack.url)
        with pytest.raises(SlackApiError) as raised:
            client.users_lookupByEmail(email="a@example.com")
    assert raised.value.response["error"] == "missing_scope"
    assert raised.value.response["needed"] == "users:read.email"


def test_an_unknown_method_is_unknown_method_on_http_200(client: WebClient):
    with pytest.raises(SlackApiError) as raised:
        client.api_call("tokens.frobnicate")
    assert (raised.value.response.status_code, raised.value.response["error"]) == (200, "unknown_method")


def test_calls_are_recorded_with_their_encoding(slack: SlackSandbox, client: WebClient):
    client.chat_postMessage(channel=ADMIN_CHANNEL, text="json body")
    client.users_info(user=ALICE)

    [post] = slack.calls("chat.postMessage")
    [info] = slack.calls("users.info")
    assert post["args"] == {"channel": ADMIN_CHANNEL, "text": "json body"}
    assert post["headers"]["content-type"].startswith("application/json")
    assert info["args"] == {"user": ALICE}
    assert info["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert post["headers"]["authorization"] == f"Bearer {slack.bot_token}"


# Web API: faults and rate limits -----------------------------------------------------------------


def test_injected_failures_answer_the_next_calls_then_clear(slack: SlackSandbox, client: WebClient):
    slack.fail("users.info", error="fatal_error", times=1)
    slack.fail("auth.test", status=500)

    with pytest.raises(SlackApiError) as api_error:
        client.users_info(user=ALICE)
    with pytest.raises(SlackApiError) as server_error:
        client.auth_test()
    assert (api_error.value.response.status_code, api_error.value.response["error"]) == (200, "fatal_error")
    assert server_error.value.response.status_code == 500
    assert client.users_info(user=ALICE)["ok"] is True


def test_the_retry_handler_rides_through_a_rate_limited_burst(slack: SlackSandbox):
    slack.rate_limits(post_per_second=5, post_burst=5)
    client = WebClient(
        token=slack.bot_token,
        base_url=slack.url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=3)],
    )

    for n in range(10):
        client.chat_postMessage(channel=ADMIN_CHANNEL, text=f"message {n}")

    assert len(slack.messages(ADMIN_CHANNEL)) == 10
    assert len(slack.calls("chat.postMessage")) > 10  # some were answered 429 and retried


def test_without_a_retry_handler_a_rate_limit_is_a_429_with_retry_after(
    slack: SlackSandbox, client: WebClient
):
    slack.rate_limits(post_burst=1)
    client.chat_postMessage(channel=ADMIN_CHANNEL, text="first")
    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel=ADMIN_CHANNEL, text="second")

    response = raised.value.response
    assert (response.status_code, response["error"]) == (429, "ratelimited")
    assert int(response.headers["Retry-After"]) >= 1
    client.chat_postMessage(channel=ALICE, text="another channel has its own allowance")


def test_tier_limits_count_per_method_and_can_be_overridden(slack: SlackSandbox, client: WebClient):
    slack.rate_limits(per_minute=2)
    client.users_info(user=ALICE)
    client.users_info(user=ALICE)
    client.conversations_info(channel=ADMIN_CHANNEL)  # another method, another allowance
    with pytest.raises(SlackApiError) as raised:
        client.users_info(user=ALICE)
    assert raised.value.response.headers["Retry-After"] == "30"

    slack.rate_limits(enabled=False)
    assert client.users_info(user=ALICE)["ok"] is True


def test_200_concurrent_calls_are_all_answered(slack: SlackSandbox, client: WebClient):
    start = threading.Barrier(200)

    def call(n: int) -> bool:
        start.wait()
        return client.users_info(user=ALICE)["ok"]

    with ThreadPoolExecutor(max_workers=200) as pool:
        answers = list(pool.map(call, range(200)))
    assert answers == [True] * 200


# Web API: files and views ------------------------------------------------------------------------


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


def test_views_are_validated_like_slack_does(slack, client, receiver):
    posted = client.chat_postMessage(channel=ALICE, text="t", blocks=approval_blocks())
    problems = {
        "must be less than 25 characters [json-pointer:/view/title/text]": {
            "type": "modal",
            "title": {"type": "plain_text", "text": "x" * 25},
            "blocks": [],
        },
        "no more than 100 items allowed [json-pointer:/view/blocks]": {
            "type": "modal",
            "title": {"type": "plain_text", "text": "x"},
            "blocks": [{"type": "divider"}] * 101,
        },
        "must define `submit` to use an `input` block in modals": scope_modal(submit=None).to_dict(),
    }
    for complaint, view in problems.items():
        slack.click(receiver.url, ALICE, posted["channel"], posted["ts"], "extend")
        with pytest.raises(SlackApiError) as raised:
            client.views_open(trigger_id=receiver.last_payload()["trigger_id"], view=view)
        assert raised.value.response["error"] == "invalid_arguments"
        assert any(complaint in m for m in raised.value.response["response_metadata"]["messages"]), complaint


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


# driver ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["command", "click", "submit", "home_opened"])
def test_driver_requests_verify_and_tampered_ones_do_not(slack, client, receiver, kind):
    view_id = open_modal_from_click(slack, client, receiver)
    posted = client.chat_postMessage(channel=ALICE, text="t", blocks=approval_blocks())
    drive = {
        "command": lambda: slack.command(receiver.url, ALICE, "list"),
        "click": lambda: slack.click(receiver.url, ALICE, posted["channel"], posted["ts"], "revoke"),
        "submit": lambda: slack.submit(receiver.url, ALICE, view_id, {}),
        "home_opened": lambda: slack.home_opened(receiver.url, ALICE),
    }
    drive[kind]()

    verifier = SignatureVerifier(slack.signing_secret)
    assert verifier.is_valid_request(receiver.last.body, receiver.last.headers)
    assert not verifier.is_valid_request(receiver.last.body + b"&text=tampered", receiver.last.headers)


def test_bad_signature_old_timestamp_and_retry_headers(slack: SlackSandbox, receiver: Receiver):
    verifier = SignatureVerifier(slack.signing_secret)

    slack.command(receiver.url, ALICE, "list", bad_signature=True)
    assert not verifier.is_valid_request(receiver.last.body, receiver.last.headers)

    stale = time.time() - 600
    slack.command(receiver.url, ALICE, "list", timestamp=stale)
    assert receiver.last.header("x-slack-request-timestamp") == str(int(stale))
    assert not verifier.is_valid_request(receiver.last.body, receiver.last.headers)

    slack.home_opened(receiver.url, ALICE, retry_num=2)
    assert receiver.last.header("x-slack-retry-num") == "2"
    assert receiver.last.header("x-slack-retry-reason") == "http_timeout"
    assert verifier.is_valid_request(receiver.last.body, receiver.last.headers)


def test_the_driver_reports_status_body_and_time_to_response(slack: SlackSandbox, receiver: Receiver):
    def slow_answer(request: Request) -> Response:
        time.sleep(0.2)
        return Response(200, {"response_action": "errors"})

    receiver.answer = slow_answer
    answer = slack.command(receiver.url, ALICE, "list")
    assert (answer.status, answer.json()) == (200, {"response_action": "errors"})
    assert answer.elapsed >= 0.2


def test_a_slash_command_carries_slacks_form_fields(slack: SlackSandbox, receiver: Receiver):
    slack.command(receiver.url, ALICE, "extend abc 30")

    form = {k: v[0] for k, v in parse_qs(receiver.last.body.decode()).items()}
    assert receiver.last.header("content-type") == "application/x-www-form-urlencoded"
    assert (form["command"], form["text"], form["user_id"]) == ("/tokens", "extend abc 30", ALICE)
    assert form["channel_id"] == slack.dm_channel(ALICE)
    assert form["team_id"] == slack.team_id
    assert form["response_url"].startswith(f"{slack.base_url}/response/")
    assert form["trigger_id"]


def test_a_click_takes_the_button_value_from_the_recorded_message(slack, client, receiver):
    posted = client.chat_postMessage(channel=ALICE, text="Token abc", blocks=approval_blocks())

    slack.click(receiver.url, ALICE, ALICE, posted["ts"], "extend")

    payload = receiver.last_payload()
    [action] = payload["actions"]
    assert payload["type"] == "block_actions"
    assert (action["action_id"], action["block_id"], action["value"]) == ("extend", "token-actions", "abc:30")
    assert payload["container"] == {
        "type": "message",
        "message_ts": posted["ts"],
        "channel_id": posted["channel"],
        "is_ephemeral": False,
    }
    assert payload["message"]["ts"] == posted["ts"]
    assert payload["user"]["id"] == ALICE
    assert payload["response_url"].startswith(f"{slack.base_url}/response/")
    with pytest.raises(LookupError):
        slack.click(receiver.url, ALICE, ALICE, posted["ts"], "no-such-action")


def test_a_submission_carries_slacks_state_shape(slack, client, receiver):
    view_id = open_modal_from_click(slack, client, receiver)

    slack.submit(
        receiver.url, ALICE, view_id, {"scopes": {"pick": ["sql", "jobs"]}, "reason": {"text": "ETL"}}
    )

    view = receiver.last_payload()["view"]
    values = view["state"]["values"]
    assert receiver.last_payload()["type"] == "view_submission"
    assert (view["callback_id"], view["private_metadata"]) == ("scopes", "token=abc")
    assert values["reason"]["text"] == {"type": "plain_text_input", "value": "ETL"}
    picked = values["scopes"]["pick"]
    assert picked["type"] == "multi_static_select"
    assert [o["value"] for o in picked["selected_options"]] == ["sql", "jobs"]
    assert picked["selected_options"][0]["text"]["text"] == "SQL"
    with pytest.raises(ValueError):
        slack.submit(receiver.url, ALICE, view_id, {"scopes": {"pick": ["nope"]}})


def test_a_submission_answer_decides_what_happens_to_the_modal(slack, client, receiver):
    view_id = open_modal_from_click(slack, client, receiver)

    receiver.answer = lambda request: Response(
        200, {"response_action": "errors", "errors": {"reason": "Say why"}}
    )
    slack.submit(receiver.url, ALICE, view_id, {"reason": {"text": ""}})
    assert [v["id"] for v in slack.views(ALICE, open_only=True)] == [view_id]

    receiver.answer = lambda request: Response(200, b"")
    slack.submit(receiver.url, ALICE, view_id, {"reason": {"text": "ETL"}})
    assert slack.views(ALICE, open_only=True) == []


def test_response_url_posts_are_recorded_and_act_on_the_message(slack, client, receiver):
    posted = client.chat_postMessage(channel=ALICE, text="Token abc", blocks=approval_blocks())
    slack.click(receiver.url, ALICE, ALICE, posted["ts"], "revoke")
    response_url = receiver.last_payload()["response_url"]

    from slack_sdk.webhook import WebhookClient

    WebhookClient(response_url).send(text="Revoked", replace_original=True)

    [post] = slack.response_url_posts()
    assert post["body"] == {"text": "Revoked", "replace_original": True}
    [message] = slack.messages(ALICE)
    assert (message["text"], message["blocks"]) == ("Revoked", [])


def test_a_home_tab_click_names_the_view_as_its_container(slack, client, receiver):
    home = client.views_publish(user_id=ALICE, view=View(type="home", blocks=approval_blocks()))["view"]

    slack.click_view(receiver.url, ALICE, home["id"], "revoke")

    payload = receiver.last_payload()
    assert payload["container"] == {"type": "view", "view_id": home["id"]}
    assert payload["actions"][0]["value"] == "abc"
    assert payload["view"]["type"] == "home"


def test_home_opened_is_an_event_callback(slack: SlackSandbox, client: WebClient, receiver: Receiver):
    client.views_publish(user_id=ALICE, view=View(type="home", blocks=[DividerBlock()]))

    slack.home_opened(receiver.url, ALICE)

    envelope = json.loads(receiver.last.body)
    assert receiver.last.header("content-type") == "application/json"
    assert envelope["type"] == "event_callback"
    assert envelope["event"]["type"] == "app_home_opened"
    assert (envelope["event"]["user"], envelope["event"]["tab"]) == (ALICE, "home")
    assert envelope["event"]["view"]["type"] == "home"


# slack_bolt against the sandbox ------------------------------------------------------------------


def bolt_app(slack: SlackSandbox) -> App:
    # With `client=` bolt 1.30 ignores `token=` and uses the client's token: it must go on the client.
    return App(
        signing_secret=slack.signing_secret, client=WebClient(token=slack.bot_token, base_url=slack.url)
    )


def test_a_bolt_app_starts_against_the_sandbox(slack: SlackSandbox):
    bolt_app(slack)

    [auth_test] = slack.calls("auth.test")
    assert auth_test["headers"]["authorization"] == f"Bearer {slack.bot_token}"


def test_bolt_ignores_token_when_given_a_client_without_one(slack: SlackSandbox):
    with pytest.raises(BoltError):
        App(token=slack.bot_token, signing_secret=slack.signing_secret, client=WebClient(base_url=slack.url))


def test_a_served_bolt_app_gets_a_signed_command_and_answers_through_the_sandbox(slack: SlackSandbox):
    app = bolt_app(slack)

    @app.command("/tokens")
    def tokens(ack, respond, client, command):
        ack()
        respond(f"You asked: {command['text']}")
        client.chat_postEphemeral(
            channel=command["channel_id"], user=command["user_id"], text="Working on it"
        )

    def serve(request: Request) -> Response:
        answer = app.dispatch(BoltRequest(body=request.body.decode(), headers=request.headers))
        return Response(answer.status, answer.body.encode(), {k: v[0] for k, v in answer.headers.items()})

    bolt = SandboxServer("bolt", serve, lambda fault: {}).start()
    try:
        accepted = slack.command(f"{bolt.base_url}/slack/events", ALICE, "list")
        refused = slack.command(f"{bolt.base_url}/slack/events", ALICE, "list", bad_signature=True)
        ephemerals = eventually(lambda: len(slack.ephemerals(ALICE)) == 2 and slack.ephemerals(ALICE))
    finally:
        bolt.stop()

    assert (accepted.status, refused.status) == (200, 401)
    assert sorted(e["text"] for e in ephemerals) == ["Working on it", "You asked: list"]
    assert [p["body"]["text"] for p in slack.response_url_posts()] == ["You asked: list"]


# start-up time -----------------------------------------------------------------------------------


def test_the_sandbox_starts_quickly():
    durations = []
    for _ in range(20):
        slack = SlackSandbox()
        started = time.perf_counter()
        slack.start()
        durations.append(time.perf_counter() - started)
        slack.stop()
    assert statistics.median(durations) < 0.5  # typically 0.01 s; room for a busy machine
