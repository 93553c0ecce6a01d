"""The Slack Web API client tokenbot uses everywhere: retries on connection errors and 429s."""

from __future__ import annotations

import time
from datetime import datetime

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot.clock import from_http_date
from bot.config import Settings

SLACK_API_URL = "https://slack.com/api/"

# The names code outside bot/slack uses, so that only bot/slack imports slack_sdk.
SlackClient = WebClient
SlackError = SlackApiError  # Slack refused a Web API call: `error_code` says why


def error_code(error: SlackApiError) -> str | None:
    """Slack's reason for refusing a call (`invalid_auth`, `channel_not_found`, ...)."""
    return error.response.get("error")


class RetryAfterHandler(RetryHandler):
    """On HTTP 429, sleep exactly what `Retry-After` says, then retry.

    slack_sdk's own handler adds up to a second of random jitter to every wait, which is meant for
    many clients sharing a limit; tokenbot is one client per workspace, and the jitter alone made a
    large fan-out half as slow again as the limits allow.
    """

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and response.status_code == 429

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        if response is None:
            raise error  # type: ignore[misc]
        values = next((v for k, v in response.headers.items() if k.lower() == "retry-after"), None)
        try:
            wait = float(values[0] if isinstance(values, list) else values)
        except (TypeError, ValueError, IndexError):
            wait = 1.0
        time.sleep(max(0.0, wait))
        state.next_attempt_requested = True
        state.increment_current_attempt()


class SlackClock:
    """Slack's clock: the `Date` header of an `auth.test` answer (read-only, Tier 4)."""

    name = "Slack"

    def __init__(self, client: WebClient) -> None:
        self._client = client

    def server_time(self) -> datetime:
        response = self._client.auth_test()
        value = next((v for k, v in (response.headers or {}).items() if k.lower() == "date"), None)
        moment = from_http_date(value[0] if isinstance(value, list) else value)
        if moment is None:
            raise ValueError(f"Slack answered without a valid Date header ({value!r})")
        return moment


def make_client(settings: Settings, *, rate_limit_retries: int = 10) -> WebClient:
    """A WebClient that waits out `Retry-After` (up to `rate_limit_retries` times per call)."""
    if settings.slack_bot_token is None:
        raise ValueError("SLACK_BOT_TOKEN is not set")
    return WebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url or SLACK_API_URL,
        timeout=30,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RetryAfterHandler(max_retry_count=rate_limit_retries),
        ],
    )
