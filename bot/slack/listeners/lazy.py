"""How every listener is bound: it answers Slack at once (`ack`) and hands its work to
bot/slack/first_clicks.py's threads (first clicks before repeated ones), in HTTP and Socket Mode
alike. So a slow Databricks call, or a busy pool, never delays the answer to Slack.

This is bolt's own `ack=` / `lazy=[...]` split, without the copy of the whole request that bolt
makes for each lazy function (it parses the body again and deep-copies it: most of the time an
answer took).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import partial
from typing import Any

from slack_sdk import WebClient

from bot.slack.context import Deps
from bot.slack.first_clicks import FirstClicksFirst

Handle = Callable[[Deps, dict[str, Any], WebClient], None]
Check = Callable[[dict[str, Any]], dict[str, str]]
# What a work function may ask for, by name, as bolt gives them to a listener.
GIVEN = ("body", "client", "respond", "event", "command")


def soon(work: FirstClicksFirst, function: Callable[..., None], check: Check | None = None):
    """The bolt listener that acks, then runs `function` on `work` with the arguments it names.
    `check` (a modal's) finds errors in the input: they are the ack, and nothing runs."""
    names = tuple(inspect.signature(function).parameters)
    unknown = set(names) - set(GIVEN)
    if unknown:
        raise TypeError(f"{function!r} asks for {sorted(unknown)}: a listener's work gets only {GIVEN}")

    def listener(ack, body, client, respond, event, command) -> None:
        errors = check(body) if check is not None else None
        if errors:
            ack(response_action="errors", errors=errors)
            return
        ack()
        given = {"body": body, "client": client, "respond": respond, "event": event, "command": command}
        work.submit(body, partial(function, **{name: given[name] for name in names}))

    return listener


def later(deps: Deps, handle: Handle):
    """The work of a click or a submission: `handle(deps, body, client)`."""

    def work(body: dict[str, Any], client: WebClient) -> None:
        handle(deps, body, client)

    return work
