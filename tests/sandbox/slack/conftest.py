"""The standard sandbox workspace, a bot client on it and a receiver for what the driver sends,
for the Slack sandbox tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from slack_sdk import WebClient

from bot.sandbox.slack import SlackSandbox
from tests.support.slack_sandbox import (
    ADMIN_CHANNEL,
    ALICE,
    BOB_DELETED,
    FOREIGN_CHANNEL,
    OTHER_BOT,
    Receiver,
)


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


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.server.start()
    yield receiver
    receiver.server.stop()
