"""How every listener is bound, the way bolt spells it: `ack=` answers Slack at once, `lazy=[...]`
does the work afterwards on the app's worker pool (the app has `process_before_response=True`;
bolt runs lazy listeners on its `listener_executor` in HTTP and Socket Mode alike). So a slow
Databricks call, or a busy pool, never delays the answer to Slack."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient

from bot.slack.context import Deps

Handle = Callable[[Deps, dict[str, Any], WebClient], None]


def acknowledge(ack) -> None:
    ack()


def later(deps: Deps, handle: Handle):
    """The lazy listener of a click or a submission: `handle(deps, body, client)`."""

    def work(body: dict[str, Any], client: WebClient) -> None:
        handle(deps, body, client)

    return work
