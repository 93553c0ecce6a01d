"""Test helper: tokenbot's bolt app running as `serve` runs it, in either of Slack's modes: behind a
real uvicorn on 127.0.0.1 (`serve --http`), or connected to the Slack sandbox over Socket Mode with
slack_sdk's own client (`serve`). The `slack_mode` fixture runs a test in both."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine

from bot.config import Settings
from bot.slack.app import build_app
from bot.slack.client import make_client
from bot.slack.context import Deps
from bot.slack.socket import close_handler
from bot.web import BackgroundServer, WebApp
from bot.wiring import make_deps

SLACK_MODES = ("http", "socket")


@pytest.fixture(params=SLACK_MODES)
def slack_mode(request: pytest.FixtureRequest) -> str:
    """How Slack reaches the bot: signed HTTP requests, or envelopes over a Socket Mode connection."""
    return request.param


# For tests of what only HTTP has (request signatures, timestamps): `@http_only` on the test.
http_only = pytest.mark.parametrize("slack_mode", ["http"])


@dataclass
class BotServer:
    base_url: str | None  # None in Socket Mode: the bot has no endpoint, it connects to Slack
    deps: Deps
    mode: str = "http"

    @property
    def slack_url(self) -> str | None:
        """Where the driver sends Slack's requests in HTTP mode (unused in Socket Mode)."""
        return self.base_url + "/slack/events" if self.base_url else None


@contextmanager
def running_bot(settings: Settings, engine: Engine, mode: str = "http", **web_options) -> Iterator[BotServer]:
    client = make_client(settings)
    deps = make_deps(settings, engine, client)
    if mode == "socket":
        with socket_mode_bot(settings, deps, client):
            yield BotServer(None, deps, mode)
        return
    web = WebApp(build_app(settings, deps, client), engine, settings.slack_signing_secret.get_secret_value(),
                 **web_options)
    with BackgroundServer(web) as server:
        yield BotServer(server.url, deps)


@contextmanager
def socket_mode_bot(settings: Settings, deps: Deps, client) -> Iterator[object]:
    """The bolt app connected over Socket Mode with the adapter `serve` uses."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    handler = SocketModeHandler(
        build_app(settings, deps, client, socket_mode=True), settings.slack_app_token.get_secret_value()
    )
    handler.connect()
    try:
        assert handler.client.is_connected(), "the Socket Mode connection failed"
        yield handler
    finally:
        close_promptly(handler)


def close_promptly(handler) -> None:
    """`handler.close()` without the idle waits inside slack_sdk's built-in client.

    The client closes its socket under the lock its receiving thread holds through a blocking
    `recv()` with a 3 s timeout, so `close()` waits for that `recv()` to time out; its message thread
    then waits up to 1 s on an empty queue before it sees the stop. Shutting the socket down wakes
    the `recv()` at once, and an empty message wakes the queue. The bot's own shutdown (`serve`)
    is left as slack_sdk makes it."""
    client = handler.client
    client.auto_reconnect_enabled = False
    client.current_session_state.terminated = True  # the receiving loop stops after this recv()
    session = client.current_session
    sock = session.sock if session is not None else None
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed by the other side
    client.message_processor.event.set()
    client.message_queue.put(None)  # skipped by the message thread, which then sees the stop
    close_handler(handler)  # as serve closes it: slack_sdk's close(), guarded against its re-arm race


def wait_for(condition: Callable[[], object], timeout: float = 30.0, what: str = "the condition") -> object:
    """Poll until `condition()` is truthy: the bot finishes its work after answering Slack."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
