"""The bolt app: `build_app(settings, deps)` binds every listener (`bot.wiring` builds the deps)."""

from __future__ import annotations

import logging

from slack_bolt import App
from slack_bolt.error import BoltError
from slack_sdk import WebClient

from bot.config import Settings
from bot.services import scans
from bot.slack.context import Deps
from bot.slack.first_clicks import FirstClicksFirst
from bot.slack.listeners import register_all

logger = logging.getLogger(__name__)

# Clicks worked on at once; more wait their turn, never their answer. Mostly waiting: a decision
# holds no transaction while Databricks answers, so a burst of clicks on different tokens (an
# announcement, a digest) is worked through together rather than one pool-width at a time. With
# Databricks taking half a second a call, 32 workers could finish at most 64 decisions a second
# and 200 owners clicking at once waited over 3 s for the last of them: 96 finish them in about 1 s.
# A click holds a database connection only for its short transactions, never across a call, so
# they share bot/db.py's pool (tests/test_db.py holds all of them working at once).
LISTENER_WORKERS = 96
# Repeated clicks on a button still being worked on (bot/slack/first_clicks.py): few at a time, so
# they never crowd other owners' first clicks out of the interpreter.
REPEAT_WORKERS = 2
# Threads that may each hold a database connection and a Databricks connection at once.
LISTENER_THREADS = LISTENER_WORKERS + REPEAT_WORKERS


class TokenRefused(Exception):
    """bolt could not start: Slack refused the bot token (its `auth.test` at start-up failed)."""


class _NoTokenFromEnvironmentWarning:
    """bolt reads SLACK_BOT_TOKEN from the environment even when given a client, then warns that
    it will not use it; tokenbot always passes the client, so the warning only confuses people."""

    def filter(self, record) -> bool:
        return "`token` will be unused" not in record.getMessage()


def build_app(settings: Settings, deps: Deps, client: WebClient, *, socket_mode: bool = False) -> App:
    """The bolt app over `client`. In HTTP mode every request must carry Slack's signature;
    Socket Mode connections are authenticated by the app-level token instead. Raises TokenRefused
    when Slack refuses the bot token, ValueError when HTTP mode has no signing secret."""
    signing_secret = (
        settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    )
    if not socket_mode and not signing_secret:
        raise ValueError(
            "SLACK_SIGNING_SECRET is not set: HTTP mode cannot verify Slack's requests without it"
        )
    try:
        app = _bolt_app(client, signing_secret, socket_mode)
    except BoltError as error:
        raise TokenRefused(str(error)) from None
    register_all(app, deps, FirstClicksFirst(workers=LISTENER_WORKERS, repeat_workers=REPEAT_WORKERS))
    scans.start(deps.engine)  # the workers of /tokens export and risky, ready before the first scan
    return app


def _bolt_app(client: WebClient, signing_secret: str | None, socket_mode: bool) -> App:
    return App(
        client=client,
        signing_secret=signing_secret,
        request_verification_enabled=not socket_mode,
        # Each listener acks inside the request and hands its work to the threads of
        # bot/slack/first_clicks.py (listeners/lazy.py): Slack gets its answer at once, however
        # slow Databricks is.
        process_before_response=True,
        raise_error_for_unhandled_request=False,
        logger=_bolt_logger(),
    )


def _bolt_logger() -> logging.Logger:
    logger = logging.getLogger("bot.slack.bolt")
    if not any(isinstance(f, _NoTokenFromEnvironmentWarning) for f in logger.filters):
        logger.addFilter(_NoTokenFromEnvironmentWarning())
    return logger
