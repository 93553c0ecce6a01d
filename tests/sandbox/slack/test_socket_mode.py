"""The Slack sandbox's Socket Mode: `apps.connections.open` takes only the app-level token, the
WebSocket speaks Slack's protocol (hello, envelopes, acks, retries of unacked events, disconnect),
and slack_sdk's own client stays connected through refreshes and dropped sockets."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from bot.sandbox.slack import DriverResponse, SlackSandbox
from bot.sandbox.slack.socket_mode import NoConnectionError
from tests.support.bot_server import wait_for

ALICE = "U0ALICE"


@pytest.fixture
def slack() -> Iterator[SlackSandbox]:
    with SlackSandbox(ack_timeout=0.5) as slack:
        slack.add_user(id=ALICE, email="alice@example.com", name="Alice")
        slack.socket.retry_delays = (0.0, 0.2, 0.2)  # Slack's are 0, 60 and 300 s
        yield slack


@pytest.fixture
def driver() -> Iterator[ThreadPoolExecutor]:
    """The driver waits for the ack, so tests that play the app drive from another thread."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield pool


def open_url(slack: SlackSandbox, token: str) -> str:
    return WebClient(base_url=slack.url).apps_connections_open(app_token=token)["url"]


def receive(connection: ClientConnection) -> dict:
    return json.loads(connection.recv(timeout=30))


@pytest.fixture
def app(slack: SlackSandbox) -> Iterator[ClientConnection]:
    """A bare WebSocket client in the app's place, past its hello."""
    with connect(open_url(slack, slack.app_token)) as connection:
        assert receive(connection)["type"] == "hello"
        yield connection


def test_only_the_app_level_token_opens_a_connection(slack: SlackSandbox):
    assert open_url(slack, slack.app_token).startswith("ws://127.0.0.1:")
    refusals = {}
    for name, token in {"bot": slack.bot_token, "unknown app": "xapp-1-A0OTHER-1-x"}.items():
        with pytest.raises(SlackApiError) as caught:
            open_url(slack, token)
        refusals[name] = caught.value.response["error"]
    with pytest.raises(SlackApiError) as caught:
        WebClient(token=slack.app_token, base_url=slack.url).chat_postMessage(channel=ALICE, text="hi")

    assert refusals == {"bot": "not_allowed_token_type", "unknown app": "invalid_auth"}
    assert caught.value.response["error"] == "not_allowed_token_type"  # the app token only connects


def test_a_connection_starts_with_hello_and_a_url_serves_one_connection(slack: SlackSandbox):
    url = open_url(slack, slack.app_token)
    with connect(url) as connection:
        hello = receive(connection)
        with pytest.raises(InvalidStatus) as refused:
            connect(url)

    assert hello["type"] == "hello" and hello["num_connections"] == 1
    assert hello["connection_info"] == {"app_id": slack.app_id} and "host" in hello["debug_info"]
    assert refused.value.response.status_code == 401


def test_a_command_arrives_as_an_envelope_and_the_ack_payload_is_the_answer(
    slack: SlackSandbox, app: ClientConnection, driver: ThreadPoolExecutor
):
    answer: Future[DriverResponse] = driver.submit(slack.command, None, ALICE, "mine", mode="socket")
    envelope = receive(app)
    app.send(json.dumps({"envelope_id": envelope["envelope_id"], "payload": {"text": "one moment"}}))

    assert (envelope["type"], envelope["accepts_response_payload"]) == ("slash_commands", True)
    assert (envelope["payload"]["command"], envelope["payload"]["text"]) == ("/tokens", "mine")
    assert envelope["payload"]["user_id"] == ALICE and envelope["payload"]["response_url"]
    response = answer.result(timeout=30)
    assert (response.status, response.json(), response.late) == (200, {"text": "one moment"}, False)


def test_a_click_and_an_event_carry_slacks_payloads(
    slack: SlackSandbox, app: ClientConnection, driver: ThreadPoolExecutor
):
    slack.dm_channel(ALICE)
    answer = driver.submit(slack.home_opened, None, ALICE, mode="socket")
    event = receive(app)
    app.send(json.dumps({"envelope_id": event["envelope_id"]}))
    answer.result(timeout=30)

    assert (event["type"], event["accepts_response_payload"]) == ("events_api", False)
    assert (event["retry_attempt"], event["retry_reason"]) == (0, "")
    assert event["payload"]["type"] == "event_callback"
    assert event["payload"]["event"]["type"] == "app_home_opened"


def test_an_unacked_event_is_sent_again_with_its_retry_attempt(
    slack: SlackSandbox, app: ClientConnection, driver: ThreadPoolExecutor
):
    answer = driver.submit(slack.home_opened, None, ALICE, mode="socket")
    first = receive(app)  # not acked: after 0.5 s Slack sends it again
    second = receive(app)
    app.send(json.dumps({"envelope_id": second["envelope_id"]}))

    response = answer.result(timeout=30)
    assert (second["retry_attempt"], second["retry_reason"]) == (1, "timeout")
    assert second["envelope_id"] != first["envelope_id"] and second["payload"] == first["payload"]
    assert response.status == 200 and response.late


def test_a_late_ack_of_a_click_is_recorded_as_late_and_not_resent(
    slack: SlackSandbox, app: ClientConnection, driver: ThreadPoolExecutor
):
    slack.dm_channel(ALICE)
    posted = WebClient(token=slack.bot_token, base_url=slack.url).chat_postMessage(
        channel=ALICE, text="t", blocks=[{"type": "actions", "elements": [
            {"type": "button", "action_id": "go", "text": {"type": "plain_text", "text": "Go"}}]}]
    )
    answer = driver.submit(slack.click, None, ALICE, posted["channel"], posted["ts"], "go", mode="socket")
    envelope = receive(app)
    time.sleep(1.0)  # past the 0.5 s deadline
    app.send(json.dumps({"envelope_id": envelope["envelope_id"]}))

    response = answer.result(timeout=30)
    assert envelope["type"] == "interactive" and envelope["payload"]["type"] == "block_actions"
    assert envelope["accepts_response_payload"] is False
    assert response.late and len(slack.socket.envelopes) == 1  # interactions are not retried


def test_without_a_connection_slack_cannot_dispatch(slack: SlackSandbox):
    with pytest.raises(NoConnectionError):
        slack.command(None, ALICE, "mine", mode="socket")
    with pytest.raises(ValueError, match="not signed"):
        slack.command(None, ALICE, "mine", mode="socket", bad_signature=True)


def test_slack_sdks_client_reconnects_after_a_refresh_and_a_dropped_socket(slack: SlackSandbox):
    client = SocketModeClient(
        app_token=slack.app_token, web_client=WebClient(base_url=slack.url), ping_interval=1
    )
    acked: list[str] = []

    def ack(client: SocketModeClient, request: SocketModeRequest) -> None:
        acked.append(request.type)
        client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))

    client.socket_mode_request_listeners.append(ack)
    client.connect()
    try:
        slack.socket.ack_timeout = 20.0  # this test is about reconnecting, not about deadlines
        assert slack.command(None, ALICE, "one", mode="socket").status == 200

        assert slack.socket.disconnect("warning", close_after=1.0) == 1
        wait_for(lambda: slack.socket.connections_opened() == 2, timeout=30, what="a new connection")
        assert slack.command(None, ALICE, "two", mode="socket").status == 200

        slack.socket.drop()
        wait_for(
            lambda: slack.socket.connections_opened() == 3 and slack.socket.open_connections() == 1,
            timeout=30,
            what="a connection after the drop",
        )
        assert slack.command(None, ALICE, "three", mode="socket").status == 200
    finally:
        client.close()
    assert acked == ["slash_commands"] * 3
    wait_for(lambda: slack.socket.open_connections() == 0, timeout=30, what="the close")
