"""The auto-scoping events webhook of HTTP mode (`POST /events/autoscope`): the HTTP side of
`bot/services/events.py`, plugged into `bot.web.WebApp(webhook=...)`.

Requests are signed with `TOKENBOT_WEBHOOK_SECRET`::

    X-Tokenbot-Timestamp: 1767225600                 (Unix seconds)
    X-Tokenbot-Signature: v1=<hex HMAC-SHA256(secret, "{timestamp}.{raw body}")>

Answers (JSON):

- 401: signature or timestamp missing, malformed, wrong, or more than 5 minutes away;
- 400: the body is not JSON, or a field is missing or bad, the type or workspace unknown
  (`{"ok": false, "field": ..., "error": ...}`); nothing is stored;
- 200: stored (`"duplicate": false`; `"applied"` says whether Databricks confirmed it and the
  token was known, else it waits for the next sync), or the same `id` again (`"duplicate": true`;
  nothing stored twice);
- 409: stored as `rejected`: Databricks' current answer for the token contradicts the event
  (`{"ok": false, "rejected": true, "error": why}`); nothing else changed;
- 500: tokenbot could not store it (logged); the sender should retry.

With no secret configured the webhook is off: `make_webhook` returns None and the route answers 404.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from bot import clock
from bot.config import Settings
from bot.db import session_scope
from bot.services import events

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-tokenbot-signature"
TIMESTAMP_HEADER = "x-tokenbot-timestamp"
WINDOW_SECONDS = 300
VERSION = "v1"

Answer = tuple[int, dict[str, Any]]


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Tokenbot-Signature` value of a request (senders and tests use it too)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"{VERSION}={digest}"


def make_webhook(
    *,
    engine: Engine,
    settings: Settings,
    gateway_for: events.GatewayFactory,
    now: Callable[[], datetime] = clock.now,
    wall: Callable[[], float] = time.time,
) -> Callable[[bytes, dict[str, str]], Answer] | None:
    """The handler for `WebApp(webhook=...)`, or None when TOKENBOT_WEBHOOK_SECRET is not set.
    `gateway_for` reads each event's token from Databricks before the event is believed."""
    if settings.webhook_secret is None or not settings.webhook_secret.get_secret_value():
        return None
    secret = settings.webhook_secret.get_secret_value()
    workspaces = frozenset(w.name for w in settings.workspaces)

    def handle(body: bytes, headers: dict[str, str]) -> Answer:
        refused = _check_signature(secret, body, headers, wall())
        if refused is not None:
            logger.warning("webhook: refused: %s", refused)
            return 401, {"ok": False, "error": refused}
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as error:
            return 400, {"ok": False, "field": "body", "error": f"body: not valid JSON ({error})"}
        try:
            event = events.parse_event(data, workspaces=workspaces, now=now())
        except events.EventError as error:
            logger.info("webhook: malformed event: %s", error.message)
            return 400, {"ok": False, "field": error.field, "error": error.message}
        try:
            with session_scope(engine) as session:
                ingested = events.ingest(
                    session=session, event=event, source="webhook", now=now(), gateway_for=gateway_for
                )
        except Exception:
            logger.exception("webhook: event %s could not be stored", event.id)
            return 500, {"ok": False, "error": "tokenbot could not store the event; try again"}
        return (409 if ingested.rejected else 200), ingested.as_dict()

    return handle


def _check_signature(secret: str, body: bytes, headers: dict[str, str], now: float) -> str | None:
    """None when the request is signed and fresh; else why not."""
    signature = headers.get(SIGNATURE_HEADER)
    timestamp = headers.get(TIMESTAMP_HEADER)
    if not signature:
        return "missing X-Tokenbot-Signature"
    if not timestamp:
        return "missing X-Tokenbot-Timestamp"
    try:
        stamp = int(timestamp.strip())
    except ValueError:
        return "X-Tokenbot-Timestamp must be Unix seconds"
    if abs(now - stamp) > WINDOW_SECONDS:
        return "X-Tokenbot-Timestamp is more than 5 minutes away: check the sender's clock, or a replay"
    expected = sign(secret, timestamp.strip(), body)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        return "wrong X-Tokenbot-Signature"
    return None
