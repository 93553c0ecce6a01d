"""Acknowledge Slack at once, do the work afterwards: how every listener is bound.

bolt runs the `ack` function inside the HTTP request (the app has `process_before_response=True`)
and the `lazy` functions on its worker pool after answering. A handler is written the natural way
(STYLE.md 2: `ack()` first, or `ack(response_action="errors", ...)` after checking a modal's
input, then the work); here it runs twice: up to its first `ack()` while Slack waits, and again
in full afterwards with `ack` a no-op. So a slow Databricks call, or a busy pool, never delays
the answer to Slack, and checking a modal's input stays in one place.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

ARGUMENTS = ("body", "client", "respond", "command", "event", "logger")


class _Acknowledged(Exception):
    """Stops the first run of a handler right after its ack()."""


def acked_first(handler: Callable[..., Any]) -> dict[str, Any]:
    wanted = [name for name in inspect.signature(handler).parameters if name in ARGUMENTS]
    acks = "ack" in inspect.signature(handler).parameters

    def acknowledge(ack, body, client, respond, command, event, logger):
        if not acks:
            ack()
            return
        available = {
            "body": body,
            "client": client,
            "respond": respond,
            "command": command,
            "event": event,
            "logger": logger,
        }

        def ack_then_stop(*args: Any, **kwargs: Any) -> None:
            ack(*args, **kwargs)
            raise _Acknowledged

        try:
            handler(ack=ack_then_stop, **{name: available[name] for name in wanted})
        except _Acknowledged:
            return
        ack()  # a handler that returned without acknowledging still answers Slack

    def work(body, client, respond, command, event, logger):
        available = {
            "body": body,
            "client": client,
            "respond": respond,
            "command": command,
            "event": event,
            "logger": logger,
        }
        extra = {"ack": _already_acknowledged} if acks else {}
        handler(**extra, **{name: available[name] for name in wanted})

    return {"ack": acknowledge, "lazy": [work]}


def _already_acknowledged(*_args: Any, **_kwargs: Any) -> None:
    """Slack was answered before the work began."""
