"""The Slack Web API client tokenbot uses everywhere: retries on connection errors and 429s."""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from bot.config import Settings

SLACK_API_URL = "https://slack.com/api/"


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
            RateLimitErrorRetryHandler(max_retry_count=rate_limit_retries),
        ],
    )
