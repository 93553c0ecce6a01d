"""A local Slack: the Web API that the real slack_sdk/slack_bolt clients call, and a driver that plays
Slack toward the bot (signed slash commands, clicks, modal submissions and events).

What it serves (see ../shared/APIS.md for the shapes):

* Web API methods under `/api/<method>` with Slack's encodings and errors (`ok: false` on HTTP 200),
  bearer-token auth, granted scopes (`x-oauth-scopes`), per-method rate limits (HTTP 429 +
  `Retry-After`) and Block Kit validation (`invalid_blocks` for messages, `invalid_arguments` with
  `response_metadata.messages` for views, as Slack answers).
* `/upload/<file_id>`: the upload URL handed out by `files.getUploadURLExternal`.
* `/response/<id>`: the `response_url` given with every driven command and click; posts to it
  replace, delete or add messages the way Slack does.
* `apps.connections.open` (with the app-level `xapp-` token) and the Socket Mode WebSocket it hands
  out (bot.sandbox.socket_mode). The driver sends commands, clicks, submissions and events either as
  signed HTTP requests (`mode="http"`) or as Socket Mode envelopes (`mode="socket"`).

State is in memory behind one lock; every request is recorded by the shared `SandboxServer`.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import http.client
import itertools
import json
import math
import re
import secrets
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.sandbox import slack_limits
from bot.sandbox.server import Fault, Request, Response, SandboxServer
from bot.sandbox.slack_limits import MANIFEST_SCOPES
from bot.sandbox.socket_mode import ACK_TIMEOUT, EVENTS_API, INTERACTIVE, SLASH_COMMANDS, SocketModeServer

__all__ = ["DEFAULT_SCOPES", "DriverResponse", "SlackSandbox", "sign", "validate_blocks", "validate_view"]

TEAM_ID = "T0SANDBOX"
TEAM_DOMAIN = "sandbox"
APP_ID = "A0SANDBOX"
BOT_ID = "B0SANDBOX"
BOT_USER_ID = "U0SANDBOT"
BOT_NAME = "tokenbot"
VERIFICATION_TOKEN = "sandbox-verification-token"  # the legacy `token` field of payloads
APP_TOKEN = "xapp-1-A0SANDBOX-1-sandbox"  # noqa: S105 - the sandbox app's app-level token

DEFAULT_SCOPES = MANIFEST_SCOPES  # what manifest.yml asks for, so a missing scope fails as in Slack

# Block Kit reference: 50 blocks per message, 100 per modal or Home tab (`invalid_blocks`,
# `invalid_arguments`). chat.postMessage's `text`: Slack truncates it past 40,000 characters;
# the sandbox refuses it with `msg_too_long` (a documented error of the method) to make it seen.
# Total sizes of blocks and views: see slack_limits.py.
MESSAGE_BLOCK_LIMIT = 50
VIEW_BLOCK_LIMIT = 100
MESSAGE_TEXT_LIMIT = 40_000


# -------------------------------------------------------------------------------------------------
# Block Kit validation: a table of fields per block and element type, checked by one small walker.
# Error strings follow Slack's: "<problem> [json-pointer:/blocks/0/text/text]".
# -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    """How one property of a block or element is checked.

    kind: "str", "plain" (plain_text object), "text" (plain_text or mrkdwn object), "texts" (list
    of text objects), "element", "elements", "options", "rich_options" (option text may be mrkdwn),
    "option", "option_groups", "confirm", "enum", "bool", "int", "any".
    """

    kind: str
    limit: int = 0  # characters for strings and text objects, items for lists
    required: bool = False
    allowed: frozenset[str] = frozenset()  # element types, or enum values
    item_limit: int = 0  # characters of each item of a "texts" list
    minimum: int = 1  # items for lists


def _f(
    kind: str,
    limit: int = 0,
    *,
    required: bool = False,
    allowed: Iterable[str] = (),
    item_limit: int = 0,
    minimum: int = 1,
) -> _Field:
    return _Field(kind, limit, required, frozenset(allowed), item_limit, minimum)


_ID = _f("str", 255)
_PLACEHOLDER = _f("plain", 150)
_CONFIRM = _f("confirm")
_SINGLE_SELECTS = (
    "static_select",
    "external_select",
    "users_select",
    "conversations_select",
    "channels_select",
)
_MULTI_SELECTS = tuple("multi_" + name for name in _SINGLE_SELECTS)
_PICKERS = ("datepicker", "timepicker", "datetimepicker")
_TEXT_INPUTS = ("plain_text_input", "email_text_input", "url_text_input", "number_input", "rich_text_input")

ACTION_ELEMENTS = frozenset(
    (
        "button",
        "overflow",
        "checkboxes",
        "radio_buttons",
        "workflow_button",
        *_SINGLE_SELECTS,
        *_MULTI_SELECTS,
        *_PICKERS,
        "rich_text_input",
    )
)
INPUT_ELEMENTS = frozenset(
    ("checkboxes", "radio_buttons", "file_input", *_SINGLE_SELECTS, *_MULTI_SELECTS, *_PICKERS, *_TEXT_INPUTS)
)
SECTION_ACCESSORIES = frozenset(
    (
        "button",
        "overflow",
        "checkboxes",
        "radio_buttons",
        "image",
        "workflow_button",
        *_SINGLE_SELECTS,
        *_MULTI_SELECTS,
        *_PICKERS,
    )
)


def _select_rules(multi: bool, options: bool) -> dict[str, _Field]:
    rules = {"action_id": _ID, "placeholder": _PLACEHOLDER, "confirm": _CONFIRM, "focus_on_load": _f("bool")}
    if options:
        rules |= {"options": _f("options", 100), "option_groups": _f("option_groups", 100)}
        rules |= {"initial_options": _f("options", 100)} if multi else {"initial_option": _f("option")}
    if multi:
        rules["max_selected_items"] = _f("int")
    return rules


ELEMENT_RULES: dict[str, dict[str, _Field]] = {
    "button": {
        "action_id": _ID,
        "text": _f("plain", 75, required=True),
        "value": _f("str", 2000),
        "url": _f("str", 3000),
        "style": _f("enum", allowed=("primary", "danger")),
        "confirm": _CONFIRM,
        "accessibility_label": _f("str", 75),
    },
    "static_select": _select_rules(multi=False, options=True),
    "multi_static_select": _select_rules(multi=True, options=True),
    "external_select": _select_rules(multi=False, options=False) | {"initial_option": _f("option")},
    "multi_external_select": _select_rules(multi=True, options=False)
    | {"initial_options": _f("options", 100)},
    "users_select": _select_rules(multi=False, options=False) | {"initial_user": _f("str", 255)},
    "multi_users_select": _select_rules(multi=True, options=False),
    "conversations_select": _select_rules(multi=False, options=False),
    "multi_conversations_select": _select_rules(multi=True, options=False),
    "channels_select": _select_rules(multi=False, options=False),
    "multi_channels_select": _select_rules(multi=True, options=False),
    "overflow": {"action_id": _ID, "options": _f("options", 5, required=True), "confirm": _CONFIRM},
    "checkboxes": {
        "action_id": _ID,
        "options": _f("rich_options", 10, required=True),
        "initial_options": _f("rich_options", 10),
        "confirm": _CONFIRM,
    },
    "radio_buttons": {
        "action_id": _ID,
        "options": _f("rich_options", 10, required=True),
        "initial_option": _f("option"),
        "confirm": _CONFIRM,
    },
    "datepicker": {
        "action_id": _ID,
        "initial_date": _f("str", 10),
        "placeholder": _PLACEHOLDER,
        "confirm": _CONFIRM,
    },
    "timepicker": {
        "action_id": _ID,
        "initial_time": _f("str", 5),
        "placeholder": _PLACEHOLDER,
        "confirm": _CONFIRM,
    },
    "datetimepicker": {"action_id": _ID, "initial_date_time": _f("int"), "confirm": _CONFIRM},
    "plain_text_input": {
        "action_id": _ID,
        "placeholder": _PLACEHOLDER,
        "initial_value": _f("str", 3000),
        "multiline": _f("bool"),
        "min_length": _f("int"),
        "max_length": _f("int"),
    },
    "email_text_input": {"action_id": _ID, "placeholder": _PLACEHOLDER, "initial_value": _f("str", 320)},
    "url_text_input": {"action_id": _ID, "placeholder": _PLACEHOLDER, "initial_value": _f("str", 3000)},
    "number_input": {
        "action_id": _ID,
        "is_decimal_allowed": _f("bool", required=True),
        "placeholder": _PLACEHOLDER,
        "initial_value": _f("str", 255),
        "min_value": _f("str", 255),
        "max_value": _f("str", 255),
    },
    "rich_text_input": {"action_id": _ID, "placeholder": _PLACEHOLDER},
    "file_input": {"action_id": _ID, "max_files": _f("int")},
    "workflow_button": {
        "action_id": _ID,
        "text": _f("plain", 75, required=True),
        "workflow": _f("any", required=True),
    },
    "image": {
        "alt_text": _f("str", 2000, required=True),
        "image_url": _f("str", 3000),
        "slack_file": _f("any"),
    },
}

BLOCK_RULES: dict[str, dict[str, _Field]] = {
    "section": {
        "block_id": _ID,
        "text": _f("text", 3000),
        "fields": _f("texts", 10, item_limit=2000),
        "accessory": _f("element", allowed=SECTION_ACCESSORIES),
        "expand": _f("bool"),
    },
    "actions": {"block_id": _ID, "elements": _f("elements", 25, required=True, allowed=ACTION_ELEMENTS)},
    "header": {"block_id": _ID, "text": _f("plain", 150, required=True)},
    "context": {
        "block_id": _ID,
        "elements": _f("elements", 10, required=True, allowed=("plain_text", "mrkdwn", "image")),
    },
    "divider": {"block_id": _ID},
    "input": {
        "block_id": _ID,
        "label": _f("plain", 2000, required=True),
        "hint": _f("plain", 2000),
        "element": _f("element", required=True, allowed=INPUT_ELEMENTS),
        "optional": _f("bool"),
        "dispatch_action": _f("bool"),
    },
    "image": {
        "block_id": _ID,
        "alt_text": _f("str", 2000, required=True),
        "image_url": _f("str", 3000),
        "slack_file": _f("any"),
        "title": _f("plain", 2000),
    },
    "rich_text": {"block_id": _ID, "elements": _f("any", required=True)},
    "markdown": {"block_id": _ID, "text": _f("str", 12000, required=True)},
    "file": {
        "block_id": _ID,
        "external_id": _f("str", 255, required=True),
        "source": _f("str", 255, required=True),
    },
    "video": {
        "block_id": _ID,
        "alt_text": _f("str", 2000, required=True),
        "title": _f("plain", 200, required=True),
        "video_url": _f("str", 3000, required=True),
        "thumbnail_url": _f("str", 3000, required=True),
    },
}

# Objects that need one of several properties (Slack: "must provide one of ...").
ONE_OF: dict[str, tuple[str, ...]] = {
    "section": ("text", "fields"),
    "image": ("image_url", "slack_file"),
    "static_select": ("options", "option_groups"),
    "multi_static_select": ("options", "option_groups"),
}

VIEW_RULES: dict[str, _Field] = {
    "title": _f("plain", 24),
    "submit": _f("plain", 24),
    "close": _f("plain", 24),
    "private_metadata": _f("str", 3000),
    "callback_id": _f("str", 255),
    "external_id": _f("str", 255),
    "clear_on_close": _f("bool"),
    "notify_on_close": _f("bool"),
}


class _Validator:
    """Collects Slack-style error strings while walking a block list."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, problem: str, pointer: str) -> None:
        self.errors.append(f"{problem} [json-pointer:{pointer}]")

    def blocks(self, blocks: Any, pointer: str, limit: int) -> None:
        if not isinstance(blocks, list):
            self.error("must be an array", pointer)
            return
        if len(blocks) > limit:
            self.error(f"no more than {limit} items allowed", pointer)
        seen: set[str] = set()
        for index, block in enumerate(blocks):
            self.block(block, f"{pointer}/{index}")
            block_id = block.get("block_id") if isinstance(block, dict) else None
            if block_id is not None and block_id in seen:
                self.error(f"duplicate block_id: {block_id}", f"{pointer}/{index}/block_id")
            seen.add(block_id)

    def block(self, block: Any, pointer: str) -> None:
        self.typed(block, BLOCK_RULES, frozenset(BLOCK_RULES), pointer)

    def typed(
        self, obj: Any, table: dict[str, dict[str, _Field]], allowed: frozenset[str], pointer: str
    ) -> None:
        """An object with a `type` looked up in `table` (a block or an element)."""
        if not isinstance(obj, dict):
            self.error("must be an object", pointer)
            return
        kind = obj.get("type")
        if kind not in allowed or kind not in table:
            self.error(f"unsupported type: {kind}", f"{pointer}/type")
            return
        self.fields(obj, table[kind], pointer)
        needed = ONE_OF.get(kind)
        if needed and not any(obj.get(name) for name in needed):
            self.error(f"must provide one of: {', '.join(needed)}", pointer)

    def fields(self, obj: dict[str, Any], rules: dict[str, _Field], pointer: str) -> None:
        for name, rule in rules.items():
            if name not in obj or obj[name] is None:
                if rule.required:
                    self.error(f"missing required field: {name}", pointer)
                continue
            self.value(obj[name], rule, f"{pointer}/{name}")

    def value(self, value: Any, rule: _Field, pointer: str) -> None:
        check = getattr(self, f"_check_{rule.kind}")
        check(value, rule, pointer)

    # one checker per _Field.kind ------------------------------------------------------------------
    def _check_any(self, value: Any, rule: _Field, pointer: str) -> None:
        pass

    def _check_str(self, value: Any, rule: _Field, pointer: str) -> None:
        if not isinstance(value, str):
            self.error("must be a string", pointer)
        elif rule.limit and len(value) > rule.limit:
            self.error(f"must be less than {rule.limit + 1} characters", pointer)

    def _check_bool(self, value: Any, rule: _Field, pointer: str) -> None:
        if not isinstance(value, bool):
            self.error("must be a boolean", pointer)

    def _check_int(self, value: Any, rule: _Field, pointer: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.error("must be an integer", pointer)

    def _check_enum(self, value: Any, rule: _Field, pointer: str) -> None:
        if value not in rule.allowed:
            self.error(f"must be one of: {', '.join(sorted(rule.allowed))}", pointer)

    def _check_text(
        self,
        value: Any,
        rule: _Field,
        pointer: str,
        kinds: tuple[str, ...] = ("plain_text", "mrkdwn"),
        limit: int | None = None,
    ) -> None:
        limit = rule.limit if limit is None else limit
        if not isinstance(value, dict):
            self.error("must be a text object", pointer)
            return
        if value.get("type") not in kinds:
            self.error(f"must be one of: {', '.join(kinds)}", f"{pointer}/type")
        text = value.get("text")
        if not isinstance(text, str) or not text:
            self.error("must be more than 0 characters", f"{pointer}/text")
        elif limit and len(text) > limit:
            self.error(f"must be less than {limit + 1} characters", f"{pointer}/text")

    def _check_plain(self, value: Any, rule: _Field, pointer: str) -> None:
        self._check_text(value, rule, pointer, kinds=("plain_text",))

    def _check_texts(self, value: Any, rule: _Field, pointer: str) -> None:
        for index, item in enumerate(self._items(value, rule, pointer)):
            self._check_text(item, rule, f"{pointer}/{index}", limit=rule.item_limit)

    def _check_element(self, value: Any, rule: _Field, pointer: str) -> None:
        self.typed(value, ELEMENT_RULES, rule.allowed, pointer)

    def _check_elements(self, value: Any, rule: _Field, pointer: str) -> None:
        for index, item in enumerate(self._items(value, rule, pointer)):
            item_pointer = f"{pointer}/{index}"
            if (
                isinstance(item, dict)
                and item.get("type") in ("plain_text", "mrkdwn")
                and item["type"] in rule.allowed
            ):
                self._check_text(item, rule, item_pointer, limit=3000)
            else:
                self._check_element(item, rule, item_pointer)

    def _check_option(
        self, value: Any, rule: _Field, pointer: str, text_kinds: tuple[str, ...] = ("plain_text",)
    ) -> None:
        if not isinstance(value, dict):
            self.error("must be an option object", pointer)
            return
        if "text" not in value:
            self.error("missing required field: text", pointer)
        else:
            self._check_text(value["text"], rule, f"{pointer}/text", kinds=text_kinds, limit=75)
        if not isinstance(value.get("value"), str):
            self.error("missing required field: value", pointer)
        elif len(value["value"]) > 150:
            self.error("must be less than 151 characters", f"{pointer}/value")

    def _check_options(self, value: Any, rule: _Field, pointer: str) -> None:
        for index, item in enumerate(self._items(value, rule, pointer)):
            self._check_option(item, rule, f"{pointer}/{index}")

    def _check_rich_options(self, value: Any, rule: _Field, pointer: str) -> None:
        for index, item in enumerate(self._items(value, rule, pointer)):
            self._check_option(item, rule, f"{pointer}/{index}", text_kinds=("plain_text", "mrkdwn"))

    def _check_option_groups(self, value: Any, rule: _Field, pointer: str) -> None:
        for index, group in enumerate(self._items(value, rule, pointer)):
            group_pointer = f"{pointer}/{index}"
            if not isinstance(group, dict):
                self.error("must be an option group object", group_pointer)
                continue
            self.fields(
                group,
                {"label": _f("plain", 75, required=True), "options": _f("options", 100, required=True)},
                group_pointer,
            )

    def _check_confirm(self, value: Any, rule: _Field, pointer: str) -> None:
        if not isinstance(value, dict):
            self.error("must be a confirmation object", pointer)
            return
        self.fields(
            value,
            {
                "title": _f("plain", 100, required=True),
                "text": _f("text", 300, required=True),
                "confirm": _f("plain", 30, required=True),
                "deny": _f("plain", 30, required=True),
                "style": _f("enum", allowed=("primary", "danger")),
            },
            pointer,
        )

    def _items(self, value: Any, rule: _Field, pointer: str) -> list[Any]:
        if not isinstance(value, list):
            self.error("must be an array", pointer)
            return []
        if len(value) < rule.minimum:
            self.error(f"must provide at least {rule.minimum} items", pointer)
        if rule.limit and len(value) > rule.limit:
            self.error(f"no more than {rule.limit} items allowed", pointer)
        return value


def validate_blocks(blocks: Any, *, limit: int = MESSAGE_BLOCK_LIMIT, pointer: str = "/blocks") -> list[str]:
    """Slack's complaints about a block list (empty when valid)."""
    validator = _Validator()
    validator.blocks(blocks, pointer, limit)
    return validator.errors


def validate_view(view: Any) -> list[str]:
    """Slack's complaints about a modal or Home tab view (empty when valid)."""
    validator = _Validator()
    if not isinstance(view, dict):
        validator.error("must be an object", "/view")
        return validator.errors
    kind = view.get("type")
    if kind not in ("modal", "home"):
        validator.error("must be one of: home, modal", "/view/type")
    validator.fields(view, VIEW_RULES, "/view")
    if kind == "modal" and "title" not in view:
        validator.error("missing required field: title", "/view")
    blocks = view.get("blocks")
    if blocks is None:
        validator.error("missing required field: blocks", "/view")
        return validator.errors
    validator.blocks(blocks, "/view/blocks", VIEW_BLOCK_LIMIT)
    if kind == "modal" and not view.get("submit") and isinstance(blocks, list):
        for index, block in enumerate(blocks):
            if isinstance(block, dict) and block.get("type") == "input":
                validator.error(
                    "must define `submit` to use an `input` block in modals", f"/view/blocks/{index}/input"
                )
                break
    return validator.errors


# -------------------------------------------------------------------------------------------------
# Rate limits
# -------------------------------------------------------------------------------------------------

TIER_PER_MINUTE = {2: 20, 3: 50, 4: 100}
POST_MESSAGE = "post"  # chat.postMessage's own rule: about one per second per channel, with a burst


class _TokenBuckets:
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


# -------------------------------------------------------------------------------------------------
# State records
# -------------------------------------------------------------------------------------------------


@dataclass
class _User:
    id: str
    email: str | None
    name: str
    tz: str = "UTC"
    deleted: bool = False
    is_bot: bool = False


@dataclass
class _Channel:
    id: str
    name: str
    members: set[str] | None  # None: everyone (membership is not checked)
    bot_member: bool = True
    dm_user: str | None = None  # set for a direct-message channel
    private: bool = False

    @property
    def kind(self) -> str:
        return "im" if self.dm_user else "private" if self.private else "public"


@dataclass
class _Trigger:
    user: str
    issued_at: float
    used: bool = False


@dataclass
class _ResponseTarget:
    """What a response_url acts on: the channel and, for clicks, the message clicked."""

    kind: str  # "command" | "action"
    user: str
    channel: str | None
    message_ts: str | None = None
    ephemeral: bool = False
    issued_at: float = 0.0
    uses: int = 0


@dataclass
class _ViewRecord:
    user: str
    view: dict[str, Any]
    closed: bool = False


@dataclass
class _File:
    id: str
    filename: str
    length: int
    alt_txt: str | None = None
    content: bytes | None = None
    title: str | None = None
    channels: list[str] = field(default_factory=list)
    initial_comment: str | None = None
    thread_ts: str | None = None
    completed: bool = False


class _SlackError(Exception):
    """An `ok: false` answer; `extra` goes into the body next to `error`."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"ok": False, "error": self.error, **self.extra}


def _blocks_error(error: str, messages: list[str]) -> _SlackError:
    metadata = {"messages": [f"[ERROR] {message}" for message in messages]}
    if error == "invalid_blocks":
        return _SlackError(error, errors=messages, response_metadata=metadata)
    return _SlackError(error, response_metadata=metadata)


@dataclass(frozen=True)
class _Method:
    """One Web API method: its handler, its rate-limit tier and the scopes that allow it (any one)."""

    handler: Callable[[SlackSandbox, dict[str, Any]], dict[str, Any]]
    tier: int | str
    scopes: tuple[str, ...] = ()


@dataclass
class DriverResponse:
    """The bot's answer to a driven request."""

    status: int
    body: str
    elapsed: float  # seconds from sending to the HTTP response
    headers: dict[str, str]
    slack_errors: list[str] = field(default_factory=list)  # Slack's complaints about a view in the answer
    mode: str = "http"
    late: bool = False  # Socket Mode: acked after Slack's 3 s (the user saw an error; an event was resent)

    def json(self) -> Any:
        return json.loads(self.body) if self.body.strip() else None


def sign(signing_secret: str, timestamp: str, body: str) -> str:
    """Slack's v0 request signature."""
    digest = hmac.new(signing_secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return f"v0={digest}"


_MISSING = object()


# -------------------------------------------------------------------------------------------------
# The sandbox
# -------------------------------------------------------------------------------------------------


class SlackSandbox:
    """A Slack workspace with one bot, served on 127.0.0.1; a context manager."""

    def __init__(
        self,
        bot_token: str = "xoxb-sandbox",  # noqa: S107 - a sandbox credential
        signing_secret: str = "sandbox-signing-secret",  # noqa: S107
        *,
        app_token: str = APP_TOKEN,
        scopes: Iterable[str] = DEFAULT_SCOPES,
        trigger_ttl: float | None = slack_limits.TRIGGER_TTL_SECONDS,
        response_url_uses: int = slack_limits.RESPONSE_URL_USES,
        response_url_ttl: float = slack_limits.RESPONSE_URL_TTL_SECONDS,
        ack_timeout: float = ACK_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bot_token = bot_token
        self.signing_secret = signing_secret
        self.app_token = app_token  # app-level, scope connections:write: only for apps.connections.open
        # Socket Mode (acks due within `ack_timeout`, Slack's 3 s); started by the first apps.connections.open
        self.socket = SocketModeServer(app_id=APP_ID, ack_timeout=ack_timeout)
        self._socket_started = False
        self.scopes = list(scopes)
        self.trigger_ttl = trigger_ttl  # Slack's is 3 s (None: never expires)
        self.response_url_uses = response_url_uses
        self.response_url_ttl = response_url_ttl
        self.bot_user_id = BOT_USER_ID
        self.bot_id = BOT_ID
        self.app_id = APP_ID
        self.team_id = TEAM_ID
        self._clock = clock
        self._lock = threading.RLock()
        self._server = SandboxServer("slack", self._route, _fault_body)
        self._ids = itertools.count(1)
        self._last_ts_us = 0
        self._last_sent: tuple[str, str, str, str] | None = None  # for resend_last
        self._users: dict[str, _User] = {}
        self._channels: dict[str, _Channel] = {}
        self._dm_by_user: dict[str, str] = {}
        self._usergroups: dict[str, dict[str, Any]] = {}
        self._messages: dict[str, list[dict[str, Any]]] = {}
        self._ephemerals: list[dict[str, Any]] = []
        self._views: dict[str, _ViewRecord] = {}
        self._triggers: dict[str, _Trigger] = {}
        self._response_targets: dict[str, _ResponseTarget] = {}
        self._response_posts: list[dict[str, Any]] = []
        self._files: dict[str, _File] = {}
        self._limits_on = False
        self._per_minute: int | None = None
        self._post_per_second = 1.0
        self._post_burst = 3
        self._scale = 1
        self._posts_per_minute: int | None = None
        self._buckets = _TokenBuckets(clock)
        self.add_user(id=BOT_USER_ID, email=None, name=BOT_NAME, is_bot=True)

    # lifecycle -------------------------------------------------------------------------------------
    def start(self) -> SlackSandbox:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()
        if self._socket_started:
            self.socket.stop()

    def __enter__(self) -> SlackSandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return self._server.base_url

    @property
    def url(self) -> str:
        """The Web API base for `WebClient(base_url=...)`."""
        return f"{self._server.base_url}/api/"

    @property
    def requests(self) -> list[Request]:
        return self._server.requests

    # builders --------------------------------------------------------------------------------------
    def add_user(
        self,
        *,
        id: str,
        email: str | None,
        name: str,
        tz: str = "UTC",
        deleted: bool = False,
        is_bot: bool = False,
    ) -> str:
        with self._lock:
            self._users[id] = _User(id, email, name, tz, deleted, is_bot)
        return id

    def add_channel(
        self,
        *,
        id: str,
        name: str,
        members: Iterable[str] | None = None,
        bot_member: bool | None = None,
        private: bool = False,
    ) -> str:
        """A channel. The bot is a member if `bot_member` says so, else if `members` is None or lists it."""
        member_set = set(members) if members is not None else None
        if bot_member is None:
            bot_member = member_set is None or self.bot_user_id in member_set
        with self._lock:
            self._channels[id] = _Channel(id, name, member_set, bot_member, private=private)
        return id

    def add_usergroup(self, *, id: str, handle: str, users: Iterable[str] = ()) -> str:
        with self._lock:
            self._usergroups[id] = {"id": id, "handle": handle, "users": list(users)}
        return id

    def rate_limits(
        self,
        enabled: bool = True,
        per_minute: int | None = None,
        *,
        post_per_second: float = 1.0,
        post_burst: int = 3,
        scale: int = 1,
        posts_per_minute: int | None = None,
    ) -> None:
        """Switch Slack's rate limits on or off. `per_minute` replaces every tier's number, `scale`
        multiplies each tier's own (benchmarks: minutes, not hours); `chat.postMessage` has its own
        per-channel rule (`post_per_second`, `post_burst`) and, when `posts_per_minute` is given, a
        workspace-wide limit too (Slack has one but does not publish it: rate-limits docs)."""
        with self._lock:
            self._limits_on = enabled
            self._per_minute = per_minute
            self._scale = scale
            self._post_per_second = post_per_second
            self._post_burst = post_burst
            self._posts_per_minute = posts_per_minute
            self._buckets.clear()

    def fail(self, method: str, error: str | None = None, status: int = 200, times: int = 1) -> None:
        """The next `times` calls of a Web API method answer `ok: false` (HTTP `status`)."""
        if error is None:
            error = "ratelimited" if status == 429 else "internal_error"
        self._server.fail(
            "*",
            rf"^/api/{re.escape(method)}$",
            status,
            times,
            retry_after=1 if status == 429 else None,
            body={"ok": False, "error": error},
        )

    def clear_faults(self) -> None:
        self._server.clear_faults()

    def slow(self, method: str, seconds: float, times: int = 1_000_000) -> None:
        """The next `times` calls of a Web API method answer normally, `seconds` late."""
        self._server.fail("*", rf"^/api/{re.escape(method)}$", 0, times, delay=seconds)

    def down(self) -> None:
        """Every request gets its connection dropped until `up()` (Slack unreachable)."""
        self._server.down()

    def up(self) -> None:
        self._server.up()

    # readers ---------------------------------------------------------------------------------------
    def calls(self, method: str | None = None) -> list[dict[str, Any]]:
        """Every Web API call received (also those answered by a fault or a rate limit)."""
        calls = []
        for request in list(self._server.requests):
            if not request.path.startswith("/api/"):
                continue
            name = request.path[len("/api/") :]
            if method is None or name == method:
                calls.append(
                    {
                        "method": name,
                        "args": _args_of(request),
                        "headers": dict(request.headers),
                        "time": request.time,
                    }
                )
        return calls

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """The channel's messages as they now stand, oldest first; a user id means the bot's DM with them."""
        with self._lock:
            channel_id = self._dm_by_user.get(channel, channel)
            return copy.deepcopy(sorted(self._messages.get(channel_id, []), key=lambda m: _ts_key(m["ts"])))

    def views(self, user: str, *, open_only: bool = False) -> list[dict[str, Any]]:
        """The user's Home tab and modals as they now stand, in the order they were first shown."""
        with self._lock:
            return [
                copy.deepcopy(record.view)
                for record in self._views.values()
                if record.user == user and not (open_only and record.closed)
            ]

    def ephemerals(self, user: str) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy([e for e in self._ephemerals if e["user"] == user])

    def files(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {
                    "id": f.id,
                    "filename": f.filename,
                    "title": f.title,
                    "length": f.length,
                    "alt_txt": f.alt_txt,
                    "content": f.content,
                    "channels": list(f.channels),
                    "initial_comment": f.initial_comment,
                    "thread_ts": f.thread_ts,
                    "completed": f.completed,
                }
                for f in self._files.values()
            ]

    def response_url_posts(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._response_posts)

    def dm_channel(self, user: str) -> str:
        """The bot's DM channel id with `user` (opened if need be), as `conversations.open` returns it."""
        with self._lock:
            return self._open_dm(user)

    # driver: Slack -> bot -------------------------------------------------------------------------
    def command(
        self,
        url: str | None,
        user: str,
        text: str,
        command: str = "/tokens",
        *,
        channel: str | None = None,
        mode: str = "http",
        bad_signature: bool = False,
        timestamp: float | None = None,
        retry_num: int | None = None,
    ) -> DriverResponse:
        """A slash command typed by `user` (in the bot's DM unless `channel` is given).

        Every driver method sends to `url` as a signed HTTP request (`mode="http"`), or over the
        app's open Socket Mode connection (`mode="socket"`; `url` is then unused)."""
        with self._lock:
            channel_id = channel or self._open_dm(user)
            known = self._channels.get(channel_id)
            form = {
                "token": VERIFICATION_TOKEN,
                "team_id": self.team_id,
                "team_domain": TEAM_DOMAIN,
                "channel_id": channel_id,
                "channel_name": "directmessage" if known is None or known.dm_user else known.name,
                "user_id": user,
                "user_name": self._user_name(user),
                "command": command,
                "text": text,
                "api_app_id": self.app_id,
                "is_enterprise_install": "false",
                "response_url": self._new_response_url(_ResponseTarget("command", user, channel_id)),
                "trigger_id": self._issue_trigger(user),
            }
        return self._drive(url, mode, SLASH_COMMANDS, form, bad_signature, timestamp, retry_num)

    def click(
        self,
        url: str | None,
        user: str,
        channel: str,
        ts: str,
        action_id: str,
        value: Any = None,
        block_id: str | None = None,
        *,
        mode: str = "http",
        bad_signature: bool = False,
        timestamp: float | None = None,
        retry_num: int | None = None,
        as_shown: dict[str, Any] | None = None,
    ) -> DriverResponse:
        """`user` clicks (or picks `value` in) an element of a recorded message or ephemeral message.
        `as_shown`: the message as the user saw it earlier (a copy from `messages()`), for clicks
        that race the bot's update of it, like a double click."""
        with self._lock:
            channel_id = self._dm_by_user.get(channel, channel)
            if as_shown is not None:
                message, ephemeral = as_shown, False
            else:
                message, ephemeral = self._find_message(channel_id, ts, user)
            found_block_id, element = _find_element(message.get("blocks") or [], action_id, block_id)
            target = _ResponseTarget("action", user, channel_id, ts, ephemeral)
            payload = self._interaction("block_actions", user) | {
                "container": {
                    "type": "message",
                    "message_ts": ts,
                    "channel_id": channel_id,
                    "is_ephemeral": ephemeral,
                },
                "channel": {"id": channel_id, "name": self._channel_name(channel_id)},
                "message": _public_message(message),
                "state": {"values": {}},
                "response_url": self._new_response_url(target),
                "actions": [_action(element, found_block_id, value, self._new_ts())],
            }
        return self._drive(url, mode, INTERACTIVE, payload, bad_signature, timestamp, retry_num)

    def click_view(
        self,
        url: str | None,
        user: str,
        view_id: str,
        action_id: str,
        value: Any = None,
        block_id: str | None = None,
        *,
        mode: str = "http",
        bad_signature: bool = False,
        timestamp: float | None = None,
        retry_num: int | None = None,
    ) -> DriverResponse:
        """`user` clicks an element in a recorded Home tab or modal."""
        with self._lock:
            record = self._view_record(view_id, user)
            found_block_id, element = _find_element(record.view["blocks"], action_id, block_id)
            payload = self._interaction("block_actions", user) | {
                "container": {"type": "view", "view_id": view_id},
                "view": copy.deepcopy(record.view),
                "actions": [_action(element, found_block_id, value, self._new_ts())],
            }
        return self._drive(url, mode, INTERACTIVE, payload, bad_signature, timestamp, retry_num)

    def submit(
        self,
        url: str | None,
        user: str,
        view_id: str,
        values: dict[str, dict[str, Any]],
        *,
        mode: str = "http",
        bad_signature: bool = False,
        timestamp: float | None = None,
        retry_num: int | None = None,
    ) -> DriverResponse:
        """`user` submits a recorded open modal; `values` is {block_id: {action_id: value or list}}."""
        with self._lock:
            record = self._view_record(view_id, user)
            if record.view["type"] != "modal" or record.closed:
                raise ValueError(f"view {view_id} is not an open modal")
            view = copy.deepcopy(record.view)
            view["state"] = {"values": _view_state(view["blocks"], values)}
            payload = self._interaction("view_submission", user) | {"view": view, "response_urls": []}
        response = self._drive(
            url, mode, INTERACTIVE, payload, bad_signature, timestamp, retry_num, answers=True
        )
        if response.status == 200 and not response.late:  # too late, Slack keeps the modal and says so
            self._apply_response_action(view_id, response)
        return response

    def home_opened(
        self,
        url: str | None,
        user: str,
        *,
        mode: str = "http",
        bad_signature: bool = False,
        timestamp: float | None = None,
        retry_num: int | None = None,
    ) -> DriverResponse:
        """`user` opens the bot's Home tab: an `app_home_opened` event."""
        with self._lock:
            event = {
                "type": "app_home_opened",
                "user": user,
                "channel": self._open_dm(user),
                "tab": "home",
                "event_ts": self._new_ts(),
            }
            home = next(
                (r.view for r in self._views.values() if r.user == user and r.view["type"] == "home"), None
            )
            if home is not None:
                event["view"] = copy.deepcopy(home)
            envelope = {
                "token": VERIFICATION_TOKEN,
                "team_id": self.team_id,
                "api_app_id": self.app_id,
                "event": event,
                "type": "event_callback",
                "event_id": f"Ev{next(self._ids):08d}",
                "event_time": int(time.time()),
                "authorizations": [
                    {
                        "enterprise_id": None,
                        "team_id": self.team_id,
                        "user_id": self.bot_user_id,
                        "is_bot": True,
                        "is_enterprise_install": False,
                    }
                ],
                "is_ext_shared_channel": False,
            }
        return self._drive(url, mode, EVENTS_API, envelope, bad_signature, timestamp, retry_num)

    # driver internals ------------------------------------------------------------------------------
    def _interaction(self, kind: str, user: str) -> dict[str, Any]:
        return {
            "type": kind,
            "token": VERIFICATION_TOKEN,
            "api_app_id": self.app_id,
            "team": {"id": self.team_id, "domain": TEAM_DOMAIN},
            "user": {
                "id": user,
                "username": self._user_name(user),
                "name": self._user_name(user),
                "team_id": self.team_id,
            },
            "enterprise": None,
            "is_enterprise_install": False,
            "trigger_id": self._issue_trigger(user),
        }

    def resend_last(
        self, *, retry_num: int | None = None, replay: bool = False, url: str | None = None
    ) -> DriverResponse:
        """Send the last driven request again with the same body: Slack's own retry (`retry_num`,
        signed anew), or an attacker's replay of the captured request (`replay`: the same
        timestamp, so the same signature), to the same `url` unless another is given."""
        assert self._last_sent is not None, "nothing was sent yet"
        last_url, body, content_type, stamp = self._last_sent
        return self._send(
            url or last_url,
            body,
            content_type,
            bad_signature=False,
            timestamp=float(stamp) if replay else None,
            retry_num=retry_num,
        )

    def _drive(
        self,
        url: str | None,
        mode: str,
        kind: str,
        payload: dict[str, Any],
        bad_signature: bool,
        timestamp: float | None,
        retry_num: int | None,
        *,
        answers: bool = False,
    ) -> DriverResponse:
        """Send `payload` the way Slack sends a request of `kind` in `mode`."""
        if mode == "socket":
            if bad_signature or timestamp is not None:
                raise ValueError("Socket Mode is not signed: bad_signature and timestamp are for HTTP")
            # Slack's envelope carries the same payload as HTTP's body: the slash command's form
            # fields as an object, an interaction's `payload`, the event callback.
            ack = self.socket.deliver(
                kind,
                payload,
                # slack_commands and view_submission answer with a payload; clicks and events do not
                accepts_response_payload=kind == SLASH_COMMANDS or answers,
                retry_attempt=retry_num,
                retry_reason="timeout" if retry_num else None,
            )
            body = json.dumps(ack.payload) if ack.payload else ""
            return DriverResponse(200, body, ack.elapsed, {}, mode=mode, late=ack.late)
        if mode != "http":
            raise ValueError(f"mode must be 'http' or 'socket', not {mode!r}")
        if url is None:
            raise ValueError("HTTP mode needs the bot's URL")
        form = "application/x-www-form-urlencoded"
        if kind == SLASH_COMMANDS:
            body, content_type = urlencode(payload), form
        elif kind == INTERACTIVE:
            body, content_type = urlencode({"payload": json.dumps(payload)}), form
        else:
            body, content_type = json.dumps(payload), "application/json"
        return self._send(
            url, body, content_type, bad_signature=bad_signature, timestamp=timestamp, retry_num=retry_num
        )

    def _send(
        self,
        url: str,
        body: str,
        content_type: str,
        *,
        bad_signature: bool,
        timestamp: float | None,
        retry_num: int | None,
        timeout: float = 30.0,
    ) -> DriverResponse:
        stamp = str(int(time.time() if timestamp is None else timestamp))
        self._last_sent = (url, body, content_type, stamp)
        signature = sign(self.signing_secret, stamp, body)
        if bad_signature:
            signature = sign(self.signing_secret + "-wrong", stamp, body)
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        }
        if retry_num is not None:
            headers |= {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
        split = urlsplit(url)
        connection_class = (
            http.client.HTTPSConnection if split.scheme == "https" else http.client.HTTPConnection
        )
        connection = connection_class(split.hostname or "127.0.0.1", split.port, timeout=timeout)
        target = split.path or "/"
        if split.query:
            target += f"?{split.query}"
        try:
            started = time.perf_counter()
            connection.request("POST", target, body=body.encode(), headers=headers)
            response = connection.getresponse()
            elapsed = time.perf_counter() - started
            text = response.read().decode(errors="replace")
            return DriverResponse(
                response.status, text, elapsed, {k.lower(): v for k, v in response.getheaders()}
            )
        finally:
            connection.close()

    def _apply_response_action(self, view_id: str, response: DriverResponse) -> None:
        """What Slack does with the bot's answer to a view_submission."""
        try:
            answer = response.json() or {}
        except ValueError:
            answer = {}
        action = answer.get("response_action") if isinstance(answer, dict) else None
        if action in ("update", "push"):
            # Slack shows the user an error and keeps the modal as it was when the new view is bad.
            response.slack_errors = validate_view(answer.get("view"))
            if response.slack_errors:
                return
        with self._lock:
            record = self._views[view_id]
            if action == "errors":
                return
            if action == "update":
                self._replace_view(record, answer["view"])
            elif action == "push":
                self._new_view(record.user, answer["view"], previous=record.view)
            elif action == "clear":
                for other in self._views.values():
                    if other.user == record.user and other.view["type"] == "modal":
                        other.closed = True
            else:
                record.closed = True

    # HTTP routing ----------------------------------------------------------------------------------
    def _route(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/api/"):
            return self._web_api(request, path[len("/api/") :])
        if match := re.fullmatch(r"/upload/([A-Za-z0-9]+)", path):
            return self._receive_upload(match.group(1), request.body)
        if match := re.fullmatch(r"/response/([A-Za-z0-9]+)", path):
            return self._receive_response_url(match.group(1), request)
        return Response(404, "not found")

    def _web_api(self, request: Request, name: str) -> Response:
        headers = {"x-oauth-scopes": ",".join(self.scopes), "x-slack-req-id": secrets.token_hex(8)}
        method = _METHODS.get(name)
        if method is None:
            return Response(200, {"ok": False, "error": "unknown_method", "req_method": name}, headers)
        headers["x-accepted-oauth-scopes"] = ",".join(method.scopes)
        args = _args_of(request)
        auth = request.header("authorization") or ""
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else args.get("token")
        if not token:
            return Response(200, {"ok": False, "error": "not_authed"}, headers)
        if name == "apps.connections.open":  # the one method of the app-level token
            headers["x-oauth-scopes"] = "connections:write"
            return Response(200, method.handler(self, args | {"token": token}), headers)
        if token == self.app_token:  # an app-level token only opens connections
            return Response(200, {"ok": False, "error": "not_allowed_token_type"}, headers)
        if token != self.bot_token:
            return Response(200, {"ok": False, "error": "invalid_auth"}, headers)
        with self._lock:
            retry_after = self._take_rate_limit(name, method.tier, args)
            if retry_after is not None:
                return Response(
                    429, {"ok": False, "error": "ratelimited"}, headers | {"Retry-After": str(retry_after)}
                )
            if method.scopes and not set(method.scopes) & set(self.scopes):
                body = {
                    "ok": False,
                    "error": "missing_scope",
                    "needed": ",".join(method.scopes),
                    "provided": ",".join(self.scopes),
                }
                return Response(200, body, headers)
            try:
                body = {"ok": True} | method.handler(self, args)
            except _SlackError as error:
                body = error.body()
        return Response(200, body, headers)

    def _take_rate_limit(self, name: str, tier: int | str, args: dict[str, Any]) -> int | None:
        if not self._limits_on:
            return None
        if tier == POST_MESSAGE:
            channel = str(args.get("channel") or "")
            wait = self._buckets.take((name, channel), self._post_burst, self._post_per_second)
            if wait is None and self._posts_per_minute:
                wait = self._buckets.take(name, self._posts_per_minute, self._posts_per_minute / 60)
            return wait
        per_minute = self._per_minute or TIER_PER_MINUTE[int(tier)] * self._scale
        return self._buckets.take(name, per_minute, per_minute / 60)

    def _apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        """Socket Mode's URL, for the app-level token only (`connections:write`); a bot or user
        token is `not_allowed_token_type`, as Slack answers (docs of apps.connections.open)."""
        token = str(args["token"])
        if token == self.app_token:
            with self._lock:
                if not self._socket_started:
                    self.socket.start()
                    self._socket_started = True
            return {"ok": True, "url": self.socket.new_url()}
        if token == self.bot_token or token.startswith(("xoxb-", "xoxp-")):
            return {"ok": False, "error": "not_allowed_token_type"}
        return {"ok": False, "error": "invalid_auth"}

    # Web API handlers (table at the bottom) ---------------------------------------------------------
    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"https://{TEAM_DOMAIN}.slack.com/",
            "team": "Sandbox",
            "user": BOT_NAME,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._postable_channel(args.get("channel"))
        text, blocks = _message_content(args, require=True)
        message = self._store_message(
            channel.id,
            text,
            blocks,
            thread_ts=args.get("thread_ts"),
            attachments=_json_arg(args, "attachments", "invalid_attachments"),
        )
        return {"channel": channel.id, "ts": message["ts"], "message": _public_message(message)}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._known_channel(args.get("channel"))
        message = self._message_in(channel.id, args.get("ts"))
        if message["user"] != self.bot_user_id:
            raise _SlackError("cant_update_message")
        text, blocks = _message_content(args, require=False)
        if text is not None:
            message["text"] = text
        if blocks is not None:
            message["blocks"] = _with_ids(blocks)  # an empty list removes them, as in Slack
        if not message["text"] and not message["blocks"] and not message.get("attachments"):
            raise _SlackError("no_text")
        message["edited"] = {"user": self.bot_user_id, "ts": self._new_ts()}
        return {
            "channel": channel.id,
            "ts": message["ts"],
            "text": message["text"],
            "message": _public_message(message),
        }

    def _chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._known_channel(args.get("channel"))
        message = self._message_in(channel.id, args.get("ts"))
        if message["user"] != self.bot_user_id:
            raise _SlackError("cant_delete_message")
        self._messages[channel.id].remove(message)
        return {"channel": channel.id, "ts": message["ts"]}

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self._user(args.get("user"))
        channel = self._postable_channel(args.get("channel"))
        in_channel = (
            channel.dm_user == user.id
            if channel.dm_user
            else (channel.members is None or user.id in channel.members)
        )
        if not in_channel:
            raise _SlackError("user_not_in_channel")
        text, blocks = _message_content(args, require=True)
        ts = self._add_ephemeral(
            channel.id, user.id, text, blocks, thread_ts=args.get("thread_ts"), via="chat.postEphemeral"
        )
        return {"message_ts": ts}

    def _conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("channel"):
            return {
                "channel": {"id": self._known_channel(args["channel"]).id},
                "no_op": True,
                "already_open": True,
            }
        users = [u for u in str(args.get("users") or "").split(",") if u]
        if not users:
            raise _SlackError("users_list_not_supplied")
        if len(users) > 1:
            raise _SlackError("not_supported_in_sandbox", detail="multi-person DMs are not emulated")
        user = self._user(users[0])
        _check_dm_allowed(user)
        already_open = user.id in self._dm_by_user
        channel_id = self._open_dm(user.id)
        result: dict[str, Any] = {"channel": {"id": channel_id}}
        if already_open:
            result |= {"no_op": True, "already_open": True}
        if _truthy(args.get("return_im")):
            result["channel"] = self._channel_object(self._channels[channel_id])
        return result

    def _conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._visible_channel(args.get("channel"))
        needed = slack_limits.missing_read_scope(channel.kind, self.scopes)
        if needed:
            raise _SlackError("missing_scope", needed=needed, provided=",".join(self.scopes))
        return {"channel": self._channel_object(channel)}

    def _users_lookup_by_email(self, args: dict[str, Any]) -> dict[str, Any]:
        email = str(args.get("email") or "").lower()
        for user in self._users.values():
            # Slack answers users_not_found for deactivated users here (users.info still returns them).
            if user.email and user.email.lower() == email and not user.deleted:
                return {"user": self._user_object(user)}
        raise _SlackError("users_not_found")

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"user": self._user_object(self._user(args.get("user")))}

    def _users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        # Slack's users.list (method docs; docs.slack.dev/apis/web-api/pagination): cursor pagination,
        # `limit` (no limit = everything at once), deleted users and bots included, the cursor an
        # opaque base64 "user:<id>" (`invalid_cursor` otherwise), "" once the list is done.
        ordered = sorted(self._users.values(), key=lambda u: u.id)
        start = 0
        cursor = str(args.get("cursor") or "")
        if cursor:
            try:
                after = base64.b64decode(cursor, validate=True).decode().removeprefix("user:")
            except (ValueError, UnicodeDecodeError):
                raise _SlackError("invalid_cursor") from None
            start = next((i for i, u in enumerate(ordered) if u.id == after), -1)
            if start < 0:
                raise _SlackError("invalid_cursor")
        limit = str(args.get("limit") or "0")
        if not limit.isdigit():
            raise _SlackError("invalid_arguments")
        limit = int(limit) or len(ordered)
        page = ordered[start : start + limit]
        rest = ordered[start + limit : start + limit + 1]
        next_cursor = base64.b64encode(f"user:{rest[0].id}".encode()).decode() if rest else ""
        members = [self._user_object(user) for user in page]
        if "users:read.email" not in self.scopes:  # Slack leaves the email out without this scope
            for member in members:
                member["profile"].pop("email", None)
        metadata = {"next_cursor": next_cursor}
        return {"members": members, "cache_ts": int(time.time()), "response_metadata": metadata}

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = self._usergroups.get(str(args.get("usergroup") or ""))
        if group is None:
            raise _SlackError("no_such_subteam")
        include_disabled = _truthy(args.get("include_disabled"))
        users = [
            u for u in group["users"] if include_disabled or not self._users.get(u, _User(u, None, u)).deleted
        ]
        return {"users": users}

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self._exchange_trigger(args.get("trigger_id"))
        view = _view_arg(args, expected_type="modal")
        return {"view": self._new_view(user, view)}

    def _views_push(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self._exchange_trigger(args.get("trigger_id"))
        view = _view_arg(args, expected_type="modal")
        stack = [
            r for r in self._views.values() if r.user == user and r.view["type"] == "modal" and not r.closed
        ]
        if len(stack) >= 3:
            raise _SlackError("push_limit_reached")
        return {"view": self._new_view(user, view, previous=stack[-1].view if stack else None)}

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view_id, external_id = args.get("view_id"), args.get("external_id")
        record = (
            self._views.get(str(view_id))
            if view_id
            else next(
                (r for r in self._views.values() if external_id and r.view.get("external_id") == external_id),
                None,
            )
        )
        if record is None:
            raise _SlackError("not_found")
        if args.get("hash") and args["hash"] != record.view["hash"]:
            raise _SlackError("hash_conflict")
        view = _view_arg(args, expected_type=record.view["type"])
        return {"view": self._replace_view(record, view)}

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self._user(args.get("user_id"))
        view = _view_arg(args, expected_type="home")
        record = next(
            (r for r in self._views.values() if r.user == user.id and r.view["type"] == "home"), None
        )
        if record is None:
            return {"view": self._new_view(user.id, view)}
        if args.get("hash") and args["hash"] != record.view["hash"]:
            raise _SlackError("hash_conflict")
        return {"view": self._replace_view(record, view)}

    def _files_get_upload_url(self, args: dict[str, Any]) -> dict[str, Any]:
        filename, length = args.get("filename"), args.get("length")
        if not filename or length is None or not str(length).isdigit():
            raise _SlackError("invalid_arguments")
        file = _File(self._new_id("F"), str(filename), int(length), alt_txt=args.get("alt_txt"))
        self._files[file.id] = file
        return {"upload_url": f"{self.base_url}/upload/{file.id}", "file_id": file.id}

    def _files_complete_upload(self, args: dict[str, Any]) -> dict[str, Any]:
        entries = _json_arg(args, "files", "invalid_arguments")
        if not isinstance(entries, list) or not entries:
            raise _SlackError("invalid_arguments")
        files = []
        for entry in entries:
            file = self._files.get(str(entry.get("id")))
            if file is None or file.content is None:
                raise _SlackError("file_not_found")
            file.title = entry.get("title") or file.filename
            files.append(file)
        channels = [c for c in [args.get("channel_id"), *str(args.get("channels") or "").split(",")] if c]
        targets = [self._postable_channel(channel_id) for channel_id in channels]  # check all before sharing
        for file in files:
            file.channels = [channel.id for channel in targets]
            file.completed = True
            file.initial_comment = args.get("initial_comment")
            file.thread_ts = args.get("thread_ts")
        for channel in targets:
            self._store_message(
                channel.id,
                args.get("initial_comment") or "",
                None,
                thread_ts=args.get("thread_ts"),
                files=[self._file_object(f) for f in files],
            )
        return {"files": [self._file_object(f) for f in files]}

    # uploads and response_url ----------------------------------------------------------------------
    def _receive_upload(self, file_id: str, body: bytes) -> Response:
        with self._lock:
            file = self._files.get(file_id)
            if file is None:
                return Response(404, "not found")
            file.content = body
        return Response(200, f"OK - {len(body)}")

    def _receive_response_url(self, response_id: str, request: Request) -> Response:
        message = request.json if isinstance(request.json, dict) else None
        if message is None and "payload" in request.form:
            message = json.loads(request.form["payload"])
        with self._lock:
            target = self._response_targets.get(response_id)
            if target is None:
                return Response(404, "no_service")
            if self._clock() - target.issued_at > self.response_url_ttl:
                return Response(404, "expired_url")
            if target.uses >= self.response_url_uses:
                return Response(404, "used_url")
            target.uses += 1
            if not isinstance(message, dict):
                return Response(400, "invalid_payload")
            self._response_posts.append(
                {
                    "id": response_id,
                    "url": f"{self.base_url}/response/{response_id}",
                    "kind": target.kind,
                    "user": target.user,
                    "channel": target.channel,
                    "body": copy.deepcopy(message),
                    "time": time.time(),
                }
            )
            try:
                self._apply_response_message(target, message)
            except _SlackError as error:
                return Response(400, error.error)
        return Response(200, {"ok": True})

    def _apply_response_message(self, target: _ResponseTarget, message: dict[str, Any]) -> None:
        """Slack's handling of a response_url post: replace or delete the source message, or add one."""
        if message.get("delete_original") and target.message_ts:
            if target.ephemeral:
                self._ephemerals = [e for e in self._ephemerals if e["ts"] != target.message_ts]
            else:
                original = self._message_in(str(target.channel), target.message_ts)
                self._messages[str(target.channel)].remove(original)
            return
        text, blocks = _message_content(message, require=True)
        if message.get("replace_original") and target.message_ts:
            pool = self._ephemerals if target.ephemeral else self._messages.get(str(target.channel), [])
            original = next((m for m in pool if m["ts"] == target.message_ts), None)
            if original is None:
                raise _SlackError("message_not_found")
            original |= {"text": text or "", "blocks": _with_ids(blocks or [])}
            if not target.ephemeral:
                original["edited"] = {"user": self.bot_user_id, "ts": self._new_ts()}
        elif message.get("response_type") == "in_channel":
            self._store_message(str(target.channel), text, blocks, thread_ts=message.get("thread_ts"))
        else:
            self._add_ephemeral(
                str(target.channel),
                target.user,
                text,
                blocks,
                thread_ts=message.get("thread_ts"),
                via="response_url",
            )

    # state helpers (called with the lock held) ------------------------------------------------------
    def _new_id(self, prefix: str) -> str:
        return f"{prefix}0SBX{next(self._ids):06d}"

    def _new_ts(self) -> str:
        """A Slack timestamp ("1700000000.000100"), unique and increasing."""
        with self._lock:
            now_us = max(int(time.time() * 1_000_000), self._last_ts_us + 1)
            self._last_ts_us = now_us
        return f"{now_us // 1_000_000}.{now_us % 1_000_000:06d}"

    def _issue_trigger(self, user: str) -> str:
        trigger_id = f"{next(self._ids)}.{int(time.time())}.{secrets.token_hex(16)}"
        self._triggers[trigger_id] = _Trigger(user, self._clock())
        return trigger_id

    def _exchange_trigger(self, trigger_id: Any) -> str:
        if not trigger_id:
            raise _SlackError(
                "invalid_arguments", response_metadata={"messages": ["[ERROR] missing trigger_id"]}
            )
        trigger = self._triggers.get(str(trigger_id))
        if trigger is None:
            raise _SlackError("invalid_trigger_id")
        if trigger.used:
            raise _SlackError("exchanged_trigger_id")
        if self.trigger_ttl is not None and self._clock() - trigger.issued_at > self.trigger_ttl:
            raise _SlackError("expired_trigger_id")
        trigger.used = True
        return trigger.user

    def _new_response_url(self, target: _ResponseTarget) -> str:
        response_id = f"{next(self._ids)}{secrets.token_hex(8)}"
        target.issued_at = self._clock()
        self._response_targets[response_id] = target
        return f"{self.base_url}/response/{response_id}"

    def _user(self, user_id: Any) -> _User:
        user = self._users.get(str(user_id or ""))
        if user is None:
            raise _SlackError("user_not_found")
        return user

    def _user_name(self, user_id: str) -> str:
        user = self._users.get(user_id)
        return user.name if user else user_id

    def _open_dm(self, user_id: str) -> str:
        channel_id = self._dm_by_user.get(user_id)
        if channel_id is None:
            channel_id = "D" + user_id[1:] if user_id[:1] in "UW" else f"D{user_id}"
            while channel_id in self._channels:
                channel_id += "X"
            self._channels[channel_id] = _Channel(channel_id, user_id, {user_id}, dm_user=user_id)
            self._dm_by_user[user_id] = channel_id
        return channel_id

    def _known_channel(self, channel_arg: Any) -> _Channel:
        channel_id = str(channel_arg or "")
        if channel_id.startswith("#"):
            channel_id = next((c.id for c in self._channels.values() if c.name == channel_id[1:]), channel_id)
        channel = self._channels.get(self._dm_by_user.get(channel_id, channel_id))
        if channel is None:
            raise _SlackError("channel_not_found")
        return channel

    def _visible_channel(self, channel_arg: Any) -> _Channel:
        """A channel as the bot can see it: a private channel it is not in does not exist for it
        (Slack answers `channel_not_found`, as conversations.info and chat.postMessage document)."""
        channel = self._known_channel(channel_arg)
        if channel.private and not channel.bot_member:
            raise _SlackError("channel_not_found")
        return channel

    def _postable_channel(self, channel_arg: Any) -> _Channel:
        """The channel a bot message goes to; a user id means the bot's DM with them."""
        channel_id = str(channel_arg or "")
        if channel_id in self._users:
            user = self._users[channel_id]
            _check_dm_allowed(user)
            return self._channels[self._open_dm(user.id)]
        channel = self._visible_channel(channel_id)
        if channel.dm_user:
            _check_dm_allowed(
                self._users.get(channel.dm_user) or _User(channel.dm_user, None, channel.dm_user)
            )
        elif not channel.bot_member:
            raise _SlackError("not_in_channel")
        return channel

    def _message_in(self, channel_id: str, ts: Any) -> dict[str, Any]:
        message = next((m for m in self._messages.get(channel_id, []) if m["ts"] == ts), None)
        if message is None:
            raise _SlackError("message_not_found")
        return message

    def _find_message(self, channel_id: str, ts: str, user: str) -> tuple[dict[str, Any], bool]:
        for message in self._messages.get(channel_id, []):
            if message["ts"] == ts:
                return message, False
        for ephemeral in self._ephemerals:
            if ephemeral["ts"] == ts and ephemeral["channel"] == channel_id and ephemeral["user"] == user:
                return ephemeral, True
        raise LookupError(f"no message {ts} in {channel_id} (for {user})")

    def _view_record(self, view_id: str, user: str) -> _ViewRecord:
        record = self._views.get(view_id)
        if record is None or record.user != user:
            raise LookupError(f"no view {view_id} shown to {user}")
        return record

    def _store_message(
        self,
        channel_id: str,
        text: str | None,
        blocks: list[Any] | None,
        *,
        thread_ts: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        message = {
            "type": "message",
            "channel": channel_id,
            "ts": self._new_ts(),
            "text": text or "",
            "blocks": _with_ids(blocks or []),
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "thread_ts": thread_ts,
            "edited": None,
        }
        message |= {k: v for k, v in extra.items() if v is not None}
        self._messages.setdefault(channel_id, []).append(message)
        return message

    def _add_ephemeral(
        self,
        channel_id: str,
        user: str,
        text: str | None,
        blocks: list[Any] | None,
        *,
        thread_ts: str | None,
        via: str,
    ) -> str:
        ts = self._new_ts()
        self._ephemerals.append(
            {
                "channel": channel_id,
                "user": user,
                "ts": ts,
                "text": text or "",
                "blocks": _with_ids(blocks or []),
                "thread_ts": thread_ts,
                "via": via,
            }
        )
        return ts

    def _new_view(
        self, user: str, view: dict[str, Any], previous: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        view_id = self._new_id("V")
        stored = {
            "id": view_id,
            "team_id": self.team_id,
            "type": view["type"],
            "title": view.get("title"),
            "submit": view.get("submit"),
            "close": view.get("close"),
            "blocks": _with_ids(view.get("blocks", [])),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""),
            "state": {"values": {}},
            "hash": self._new_hash(),
            "clear_on_close": bool(view.get("clear_on_close")),
            "notify_on_close": bool(view.get("notify_on_close")),
            "root_view_id": previous["root_view_id"] if previous else view_id,
            "previous_view_id": previous["id"] if previous else None,
            "app_id": self.app_id,
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        self._views[view_id] = _ViewRecord(user, stored)
        return copy.deepcopy(stored)

    def _replace_view(self, record: _ViewRecord, view: dict[str, Any]) -> dict[str, Any]:
        record.view |= {
            "title": view.get("title"),
            "submit": view.get("submit"),
            "close": view.get("close"),
            "blocks": _with_ids(view.get("blocks", [])),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""),
            "hash": self._new_hash(),
        }
        return copy.deepcopy(record.view)

    def _new_hash(self) -> str:
        return f"{time.time():.6f}.{secrets.token_hex(4)}"

    def _channel_name(self, channel_id: str) -> str:
        channel = self._channels.get(channel_id)
        return "directmessage" if channel is None or channel.dm_user else channel.name

    def _channel_object(self, channel: _Channel) -> dict[str, Any]:
        if channel.dm_user:
            return {
                "id": channel.id,
                "created": 0,
                "is_im": True,
                "is_org_shared": False,
                "user": channel.dm_user,
                "is_user_deleted": self._users[channel.dm_user].deleted
                if channel.dm_user in self._users
                else False,
                "priority": 0,
            }
        return {
            "id": channel.id,
            "name": channel.name,
            "is_channel": True,
            "is_group": channel.private,
            "is_im": False,
            "is_mpim": False,
            "is_private": channel.private,
            "is_archived": False,
            "is_general": False,
            "is_member": channel.bot_member,
            "created": 0,
            "creator": "",
            "num_members": len(channel.members) if channel.members is not None else None,
        }

    def _user_object(self, user: _User) -> dict[str, Any]:
        zone = _zone(user.tz)
        offset = zone.utcoffset(datetime.now(UTC))
        return {
            "id": user.id,
            "team_id": self.team_id,
            "name": user.name,
            "deleted": user.deleted,
            "real_name": user.name,
            "tz": user.tz,
            "tz_label": datetime.now(zone).tzname(),
            "tz_offset": int(offset.total_seconds()) if offset else 0,
            "is_bot": user.is_bot,
            "is_admin": False,
            "is_owner": False,
            "is_app_user": False,
            "is_restricted": False,
            "updated": 0,
            "profile": {
                "real_name": user.name,
                "display_name": user.name,
                "real_name_normalized": user.name,
                "email": user.email,
                "team": self.team_id,
                **({"bot_id": self.bot_id} if user.id == self.bot_user_id else {}),
            },
        }

    def _file_object(self, file: _File) -> dict[str, Any]:
        return {
            "id": file.id,
            "created": int(time.time()),
            "timestamp": int(time.time()),
            "name": file.filename,
            "title": file.title or file.filename,
            "mimetype": "application/octet-stream",
            "filetype": "binary",
            "user": self.bot_user_id,
            "size": len(file.content or b""),
            "mode": "hosted",
            "is_external": False,
            "url_private": f"{self.base_url}/files/{file.id}",
            "channels": list(file.channels),
        }


# -------------------------------------------------------------------------------------------------
# Helpers without state
# -------------------------------------------------------------------------------------------------


def _fault_body(fault: Fault) -> dict[str, Any]:
    return {"ok": False, "error": "ratelimited" if fault.status == 429 else "internal_error"}


def _args_of(request: Request) -> dict[str, Any]:
    """The call's arguments, wherever the client put them (query, form or JSON body)."""
    args: dict[str, Any] = {name: values[0] for name, values in request.query.items()}
    args |= request.form
    if isinstance(request.json, dict):
        args |= request.json
    return args


def _truthy(value: Any) -> bool:
    return value in (True, 1, "1", "true", "True")


def _ts_key(ts: str) -> tuple[int, int]:
    seconds, _, micros = ts.partition(".")
    return int(seconds), int(micros or 0)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _check_dm_allowed(user: _User) -> None:
    if user.is_bot:
        raise _SlackError("cannot_dm_bot")
    if user.deleted:
        raise _SlackError("user_disabled")


def _json_arg(args: dict[str, Any], name: str, error: str) -> Any:
    """A structured argument: a JSON body carries it as is, a form body as a JSON string."""
    value = args.get(name)
    if isinstance(value, str):
        try:
            return json.loads(value) if value.strip() else None
        except ValueError as exc:
            raise _SlackError(error) from exc
    return value


def _message_content(args: dict[str, Any], *, require: bool) -> tuple[str | None, list[Any] | None]:
    """Text and blocks of a message, checked as Slack does."""
    text = args.get("text")
    blocks = _json_arg(args, "blocks", "invalid_blocks_format")
    if blocks is not None:
        if not isinstance(blocks, list):
            raise _SlackError("invalid_blocks_format")
        errors = validate_blocks(blocks)
        if errors:
            raise _blocks_error("invalid_blocks", errors)
        if slack_limits.block_text_size(blocks) > slack_limits.MESSAGE_BLOCK_TEXT_LIMIT:
            raise _SlackError("msg_blocks_too_long")
    if text is not None and len(str(text)) > MESSAGE_TEXT_LIMIT:
        raise _SlackError("msg_too_long")
    if require and not text and not blocks and not args.get("attachments"):
        raise _SlackError("no_text")
    return (None if text is None else str(text)), blocks


def _view_arg(args: dict[str, Any], *, expected_type: str) -> dict[str, Any]:
    view = _json_arg(args, "view", "invalid_arguments")
    errors = validate_view(view)
    if not errors and view["type"] != expected_type:
        errors = [f"must match the `type` of the view: {expected_type} [json-pointer:/view/type]"]
    if errors:
        raise _blocks_error("invalid_arguments", errors)
    if slack_limits.block_text_size(view["blocks"]) > slack_limits.VIEW_BLOCK_TEXT_LIMIT:
        raise _SlackError("view_too_large")
    return view


def _with_ids(blocks: list[Any]) -> list[Any]:
    """A copy with the `block_id`s and `action_id`s Slack fills in when a block or element has none."""
    blocks = copy.deepcopy(blocks)
    for block in blocks:
        if isinstance(block, dict):
            block.setdefault("block_id", secrets.token_urlsafe(3))
            for element in _block_elements(block):
                if element.get("type") in ELEMENT_RULES and element["type"] != "image":
                    element.setdefault("action_id", secrets.token_urlsafe(3))
    return blocks


def _block_elements(block: dict[str, Any]) -> list[dict[str, Any]]:
    """The interactive elements a block holds."""
    if block.get("type") == "actions":
        return [e for e in block.get("elements", []) if isinstance(e, dict)]
    if block.get("type") == "section" and isinstance(block.get("accessory"), dict):
        return [block["accessory"]]
    if block.get("type") == "input" and isinstance(block.get("element"), dict):
        return [block["element"]]
    return []


def _find_element(blocks: list[Any], action_id: str, block_id: str | None) -> tuple[str, dict[str, Any]]:
    for block in blocks:
        if block_id is not None and block.get("block_id") != block_id:
            continue
        for element in _block_elements(block):
            if element.get("action_id") == action_id:
                return block["block_id"], element
    raise LookupError(
        f"no element with action_id {action_id!r}" + (f" in block {block_id!r}" if block_id else "")
    )


def _public_message(message: dict[str, Any]) -> dict[str, Any]:
    """A stored message the way Slack shows it in payloads and API answers."""
    return copy.deepcopy({k: v for k, v in message.items() if v is not None and k not in ("channel", "via")})


# element state: what Slack reports for an element holding `value` ---------------------------------
_SINGLE_OPTION = ("static_select", "external_select", "radio_buttons", "overflow")
_MULTI_OPTION = ("multi_static_select", "multi_external_select", "checkboxes")
_SELECTED_KEY = {
    "users_select": "selected_user",
    "multi_users_select": "selected_users",
    "conversations_select": "selected_conversation",
    "multi_conversations_select": "selected_conversations",
    "channels_select": "selected_channel",
    "multi_channels_select": "selected_channels",
    "datepicker": "selected_date",
    "timepicker": "selected_time",
    "datetimepicker": "selected_date_time",
}
_INITIAL_KEY = {
    "users_select": "initial_user",
    "multi_users_select": "initial_users",
    "conversations_select": "initial_conversation",
    "multi_conversations_select": "initial_conversations",
    "channels_select": "initial_channel",
    "multi_channels_select": "initial_channels",
    "datepicker": "initial_date",
    "timepicker": "initial_time",
    "datetimepicker": "initial_date_time",
}


def _options_of(element: dict[str, Any]) -> list[dict[str, Any]]:
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    return options


def _option_for(element: dict[str, Any], value: Any) -> dict[str, Any]:
    for option in _options_of(element):
        if option.get("value") == value:
            return {"text": option["text"], "value": option["value"]}
    if element.get("type", "").endswith("external_select"):
        return {"text": {"type": "plain_text", "text": str(value), "emoji": True}, "value": str(value)}
    raise ValueError(f"{value!r} is not an option of {element.get('action_id')!r}")


def _initial_value(element: dict[str, Any]) -> Any:
    kind = element.get("type", "")
    if kind in _SINGLE_OPTION:
        return (element.get("initial_option") or {}).get("value")
    if kind in _MULTI_OPTION:
        return [option["value"] for option in element.get("initial_options") or []]
    if kind in _INITIAL_KEY:
        return element.get(_INITIAL_KEY[kind])
    return element.get("initial_value")


def _element_state(element: dict[str, Any], value: Any) -> dict[str, Any]:
    """The state Slack reports for an element holding `value` (None: nothing chosen)."""
    kind = element.get("type", "")
    if kind in _SINGLE_OPTION:
        return {"type": kind, "selected_option": None if value is None else _option_for(element, value)}
    if kind in _MULTI_OPTION:
        values = [value] if isinstance(value, str) else list(value or [])
        return {"type": kind, "selected_options": [_option_for(element, v) for v in values]}
    if kind in _SELECTED_KEY:
        multi = kind.startswith("multi_")
        if multi:
            value = [value] if isinstance(value, str) else list(value or [])
        return {"type": kind, _SELECTED_KEY[kind]: value}
    return {"type": kind, "value": None if value is None else str(value)}


def _action(element: dict[str, Any], block_id: str, value: Any, action_ts: str) -> dict[str, Any]:
    """One entry of a block_actions payload's `actions`."""
    common = {"action_id": element["action_id"], "block_id": block_id, "action_ts": action_ts}
    if element.get("type") == "button":
        action = {
            "type": "button",
            "text": element["text"],
            "value": element.get("value") if value is None else str(value),
        }
        if "style" in element:
            action["style"] = element["style"]
        return action | common
    return _element_state(element, value) | common


def _view_state(blocks: list[Any], values: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """`view.state.values`: every stateful element, holding the given value or its initial one."""
    state: dict[str, dict[str, Any]] = {}
    for block in blocks:
        for element in _block_elements(block):
            if element.get("type") in ("button", "overflow", "workflow_button", "image"):
                continue
            block_id, action_id = block["block_id"], element["action_id"]
            given = values.get(block_id, {}).get(action_id, _MISSING)
            value = _initial_value(element) if given is _MISSING else given
            state.setdefault(block_id, {})[action_id] = _element_state(element, value)
    for block_id, actions in values.items():
        for action_id in actions:
            if action_id not in state.get(block_id, {}):
                raise LookupError(f"the view has no input {block_id}/{action_id}")
    return state


_METHODS: dict[str, _Method] = {
    "auth.test": _Method(SlackSandbox._auth_test, 4),
    "apps.connections.open": _Method(SlackSandbox._apps_connections_open, 1, ("connections:write",)),
    "chat.postMessage": _Method(SlackSandbox._chat_post_message, POST_MESSAGE, ("chat:write",)),
    "chat.update": _Method(SlackSandbox._chat_update, 3, ("chat:write",)),
    "chat.delete": _Method(SlackSandbox._chat_delete, 3, ("chat:write",)),
    "chat.postEphemeral": _Method(SlackSandbox._chat_post_ephemeral, 4, ("chat:write",)),
    "conversations.open": _Method(SlackSandbox._conversations_open, 3, ("im:write", "mpim:write")),
    "conversations.info": _Method(
        SlackSandbox._conversations_info, 3, ("channels:read", "groups:read", "im:read", "mpim:read")
    ),
    "users.lookupByEmail": _Method(SlackSandbox._users_lookup_by_email, 3, ("users:read.email",)),
    "users.info": _Method(SlackSandbox._users_info, 4, ("users:read",)),
    "users.list": _Method(SlackSandbox._users_list, 2, ("users:read",)),
    "usergroups.users.list": _Method(SlackSandbox._usergroups_users_list, 4, ("usergroups:read",)),
    "views.open": _Method(SlackSandbox._views_open, 4),
    "views.push": _Method(SlackSandbox._views_push, 4),
    "views.update": _Method(SlackSandbox._views_update, 4),
    "views.publish": _Method(SlackSandbox._views_publish, 4),
    "files.getUploadURLExternal": _Method(SlackSandbox._files_get_upload_url, 4, ("files:write",)),
    "files.completeUploadExternal": _Method(SlackSandbox._files_complete_upload, 4, ("files:write",)),
}
