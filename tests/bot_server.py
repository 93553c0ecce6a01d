"""Test helper: tokenbot's HTTP app served by a real uvicorn on 127.0.0.1, as `serve --http` would."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from sqlalchemy import Engine

from bot.config import Settings
from bot.slack.app import build_app, make_deps
from bot.slack.client import make_client
from bot.slack.context import Deps
from bot.web import WebApp


@dataclass
class BotServer:
    base_url: str
    deps: Deps

    @property
    def slack_url(self) -> str:
        return self.base_url + "/slack/events"


@contextmanager
def running_bot(settings: Settings, engine: Engine) -> Iterator[BotServer]:
    client = make_client(settings)
    deps = make_deps(settings, engine, client)
    web = WebApp(build_app(settings, deps, client), engine, settings.slack_signing_secret.get_secret_value())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(web, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=10, what="the bot to start")
    try:
        yield BotServer(f"http://127.0.0.1:{port}", deps)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def wait_for(condition: Callable[[], object], timeout: float = 10.0, what: str = "the condition") -> object:
    """Poll until `condition()` is truthy: the bot finishes its work after answering Slack."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
