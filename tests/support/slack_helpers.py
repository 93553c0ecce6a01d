"""Test helpers: a Slack sandbox wired into the environment tokenbot reads."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from bot.sandbox.slack import SlackSandbox

ADMIN_CHANNEL = "C0ADMINS"
DIGEST_CHANNEL = "C0DIGEST"
ADMIN_USER = "U0ADMIN"
ACK_TIMEOUT = 20.0
SLACK_TOML = f"""
[slack]
admins = ["{ADMIN_USER}"]
admin_channel = "{ADMIN_CHANNEL}"
digest_channel = "{DIGEST_CHANNEL}"
"""


@contextmanager
def slack_workspace(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackSandbox]:
    # Slack's 3 s ack deadline, stretched: a loaded test machine must not turn a slow ack into a
    # resent event (tests of the deadline itself set their own).
    with SlackSandbox(ack_timeout=ACK_TIMEOUT) as slack:
        slack.add_channel(id=ADMIN_CHANNEL, name="tokenbot-admins")
        slack.add_channel(id=DIGEST_CHANNEL, name="tokenbot-digest")
        slack.add_user(id=ADMIN_USER, email="admin@example.com", name="Ada Admin")
        monkeypatch.setenv("SLACK_BOT_TOKEN", slack.bot_token)
        monkeypatch.setenv("SLACK_SIGNING_SECRET", slack.signing_secret)
        monkeypatch.setenv("SLACK_APP_TOKEN", slack.app_token)
        monkeypatch.setenv("TOKENBOT_SLACK_API_URL", slack.url)
        yield slack
