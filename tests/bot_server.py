"""Test helper: tokenbot's HTTP app served by a real uvicorn on 127.0.0.1, as `serve --http` would."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine

from bot.config import Settings
from bot.slack.app import build_app, make_deps
from bot.slack.client import make_client
from bot.slack.context import Deps
from bot.web import BackgroundServer, WebApp


@dataclass
class BotServer:
    base_url: str
    deps: Deps

    @property
    def slack_url(self) -> str:
        return self.base_url + "/slack/events"


@contextmanager
def running_bot(settings: Settings, engine: Engine, **web_options) -> Iterator[BotServer]:
    client = make_client(settings)
    deps = make_deps(settings, engine, client)
    web = WebApp(build_app(settings, deps, client), engine, settings.slack_signing_secret.get_secret_value(),
                 **web_options)
    with BackgroundServer(web) as server:
        yield BotServer(server.url, deps)


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
