"""The Slack sandbox as a whole (sandbox.py): authentication, scopes and unknown methods before
any handler, recorded calls, injected faults and rate limits, a real slack_bolt app served
against it, and its start-up time."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from slack_bolt import App, BoltRequest
from slack_bolt.error import BoltError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot.sandbox.server import Request, Response, SandboxServer
from bot.sandbox.slack import SlackSandbox
from tests.support.slack_sandbox import ADMIN_CHANNEL, ALICE

# auth, scopes, unknown methods and recorded calls ------------------------------------------------


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


# faults and rate limits --------------------------------------------------------------------------


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


# slack_bolt against the sandbox ------------------------------------------------------------------


def eventually(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Wait for work a bolt listener does after ack()."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.02)


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
