"""Limits of the real Slack Web API that the sandbox (bot/sandbox/slack.py) copies, with where each
figure comes from. Kept apart so the figures are easy to find and to change when Slack says more."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# The bot scopes of manifest.yml, no more: a call the app could not make in Slack fails here too
# (tests/sandbox/test_slack_faithful.py compares the two).
MANIFEST_SCOPES = (
    "commands",
    "chat:write",
    "im:write",
    "users:read",
    "users:read.email",
    "usergroups:read",
    "files:write",
    "channels:read",
    "groups:read",
)

# conversations.info accepts any of its four read scopes, but each kind of conversation needs its
# own (Slack's method page lists them per conversation type; the answer is `missing_scope`).
READ_SCOPE_BY_KIND = {"public": "channels:read", "private": "groups:read", "im": "im:read"}

# Total block text of one message. Slack does not publish it; a Slack engineer answered "12,000 text
# characters with a buffer for block containers" (slackapi/bolt-js #2509, refusals from ~13,200
# characters of markdown blocks), and #2867 saw `msg_blocks_too_long` at 11,341 characters of
# `.text`. APIS.md: treat ~12,000 characters of block text as the budget. Measured as #2867 does:
# the sum of every `text` string in the block tree. #2867 also saw a response_url take blocks that
# chat.postMessage refused; the sandbox refuses them at a response_url too, since tokenbot sends
# the same answers with chat.postEphemeral when a response_url is used up.
MESSAGE_BLOCK_TEXT_LIMIT = 12_000
# A view's total size answers `view_too_large` (views.open/update/push/publish error lists); the
# threshold is not published either. *Unconfirmed*: the sandbox allows a view two and a half
# messages' worth of block text.
VIEW_BLOCK_TEXT_LIMIT = 30_000

# trigger_id: "expires after 3 seconds", usable once (api.slack.com "Handling user interaction",
# views.open errors `expired_trigger_id`, `exchanged_trigger_id`).
TRIGGER_TTL_SECONDS = 3.0
# response_url: "up to 5 times within 30 minutes" (api.slack.com "Handling user interaction:
# responding to interactions"; the same for slash commands). Past that Slack answers HTTP 404 with
# the body `used_url` or `expired_url` (*unconfirmed* wording, as seen reported by users).
RESPONSE_URL_USES = 5
RESPONSE_URL_TTL_SECONDS = 30 * 60


def block_text_size(blocks: Any) -> int:
    """Characters of every `text` string in a block tree (text objects, fields, option labels)."""
    if isinstance(blocks, dict):
        return sum(
            len(value) if key == "text" and isinstance(value, str) else block_text_size(value)
            for key, value in blocks.items()
        )
    if isinstance(blocks, list):
        return sum(block_text_size(item) for item in blocks)
    return 0


def missing_read_scope(kind: str, granted: Iterable[str]) -> str | None:
    """The read scope a conversation of this kind needs when it is not granted, else None."""
    needed = READ_SCOPE_BY_KIND[kind]
    return None if needed in set(granted) else needed
