"""Limits of the real Slack Web API that the sandbox copies, with where each figure comes from, and
the token buckets that apply its rate limits. Kept apart so the figures are easy to find and to
change when Slack says more."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

# The bot scopes of manifest.yml, no more: a call the app could not make in Slack fails here too
# (tests/sandbox/slack/test_limits.py compares the two).
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

# Block Kit reference: 50 blocks per message, 100 per modal or Home tab (`invalid_blocks`,
# `invalid_arguments`). chat.postMessage's `text`: Slack truncates it past 40,000 characters;
# the sandbox refuses it with `msg_too_long` (a documented error of the method) to make it seen.
# Total sizes of blocks and views: below.
MESSAGE_BLOCK_LIMIT = 50
VIEW_BLOCK_LIMIT = 100
MESSAGE_TEXT_LIMIT = 40_000

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


# Rate limits -----------------------------------------------------------------------------------------

TIER_PER_MINUTE = {2: 20, 3: 50, 4: 100}
POST_MESSAGE = "post"  # chat.postMessage's own rule: about one per second per channel, with a burst


class TokenBuckets:
    """One bucket per key: `capacity` calls at once, refilled at `per_second`. Deterministic: no jitter."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[Hashable, tuple[float, float]] = {}

    def take(self, key: Hashable, capacity: float, per_second: float) -> int | None:
        """None when the call may go ahead, else whole seconds until a slot frees (at least 1)."""
        now = self._clock()
        tokens, last = self._buckets.get(key, (capacity, now))
        tokens = min(capacity, tokens + (now - last) * per_second)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return None
        self._buckets[key] = (tokens, now)
        return max(1, math.ceil((1 - tokens) / per_second))

    def clear(self) -> None:
        self._buckets.clear()


@dataclass
class RateLimits:
    """Slack's rate limits as the sandbox applies them: each method's tier, and chat.postMessage's
    own per-channel rule (plus a workspace-wide one when `posts_per_minute` is given)."""

    enabled: bool = False
    per_minute: int | None = None  # replaces every tier's number
    post_per_second: float = 1.0
    post_burst: int = 3
    scale: int = 1  # multiplies each tier's own number
    posts_per_minute: int | None = None
    clock: Callable[[], float] = time.monotonic
    buckets: TokenBuckets = field(init=False)

    def __post_init__(self) -> None:
        self.buckets = TokenBuckets(self.clock)

    def take(self, name: str, tier: int | str, args: dict[str, Any]) -> int | None:
        """None when the call of method `name` may go ahead, else the seconds to wait."""
        if not self.enabled:
            return None
        if tier == POST_MESSAGE:
            channel = str(args.get("channel") or "")
            wait = self.buckets.take((name, channel), self.post_burst, self.post_per_second)
            if wait is None and self.posts_per_minute:
                wait = self.buckets.take(name, self.posts_per_minute, self.posts_per_minute / 60)
            return wait
        per_minute = self.per_minute or TIER_PER_MINUTE[int(tier)] * self.scale
        return self.buckets.take(name, per_minute, per_minute / 60)
