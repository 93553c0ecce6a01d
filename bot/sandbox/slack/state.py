"""The state of a sandbox Slack workspace: its users, channels, messages, views, files, triggers and
response_urls, held in memory behind one lock, with the helpers that look them up and store them.

`SlackWorkspace` is the base of the sandbox's parts: the Web API (web_api.py) and the driver
(driver.py) each add their methods to it, and `SlackSandbox` (sandbox.py) serves them.
"""

from __future__ import annotations

import copy
import itertools
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.sandbox.slack.elements import with_ids

TEAM_ID = "T0SANDBOX"
TEAM_DOMAIN = "sandbox"
APP_ID = "A0SANDBOX"
BOT_ID = "B0SANDBOX"
BOT_USER_ID = "U0SANDBOT"
BOT_NAME = "tokenbot"


@dataclass
class User:
    id: str
    email: str | None
    name: str
    tz: str = "UTC"
    deleted: bool = False
    is_bot: bool = False


@dataclass
class Channel:
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
class Trigger:
    user: str
    issued_at: float
    used: bool = False


@dataclass
class ResponseTarget:
    """What a response_url acts on: the channel and, for clicks, the message clicked."""

    kind: str  # "command" | "action"
    user: str
    channel: str | None
    message_ts: str | None = None
    ephemeral: bool = False
    issued_at: float = 0.0
    uses: int = 0


@dataclass
class ViewRecord:
    user: str
    view: dict[str, Any]
    closed: bool = False


@dataclass
class File:
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


class SlackError(Exception):
    """An `ok: false` answer; `extra` goes into the body next to `error`."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"ok": False, "error": self.error, **self.extra}


class SlackWorkspace:
    """A Slack workspace with one bot: what it holds, and how it is looked up and changed."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.bot_user_id = BOT_USER_ID
        self.bot_id = BOT_ID
        self.app_id = APP_ID
        self.team_id = TEAM_ID
        self._clock = clock
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._last_ts_us = 0
        self._users: dict[str, User] = {}
        self._channels: dict[str, Channel] = {}
        self._dm_by_user: dict[str, str] = {}
        self._usergroups: dict[str, dict[str, Any]] = {}
        self._messages: dict[str, list[dict[str, Any]]] = {}
        self._ephemerals: list[dict[str, Any]] = []
        self._views: dict[str, ViewRecord] = {}
        self._triggers: dict[str, Trigger] = {}
        self._response_targets: dict[str, ResponseTarget] = {}
        self._response_posts: list[dict[str, Any]] = []
        self._files: dict[str, File] = {}
        self.add_user(id=BOT_USER_ID, email=None, name=BOT_NAME, is_bot=True)

    @property
    def base_url(self) -> str:
        """Where the workspace is served (the server's address, known once it listens)."""
        raise NotImplementedError

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
            self._users[id] = User(id, email, name, tz, deleted, is_bot)
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
            self._channels[id] = Channel(id, name, member_set, bot_member, private=private)
        return id

    def add_usergroup(self, *, id: str, handle: str, users: Iterable[str] = ()) -> str:
        with self._lock:
            self._usergroups[id] = {"id": id, "handle": handle, "users": list(users)}
        return id

    # readers ---------------------------------------------------------------------------------------
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

    # state helpers (called with the lock held) ------------------------------------------------------
    def _new_id(self, prefix: str) -> str:
        return f"{prefix}0SBX{next(self._ids):06d}"

    def _new_ts(self) -> str:
        """A Slack timestamp ("1700000000.000100"), unique and increasing."""
        with self._lock:
            now_us = max(int(time.time() * 1_000_000), self._last_ts_us + 1)
            self._last_ts_us = now_us
        return f"{now_us // 1_000_000}.{now_us % 1_000_000:06d}"

    def _user(self, user_id: Any) -> User:
        user = self._users.get(str(user_id or ""))
        if user is None:
            raise SlackError("user_not_found")
        return user

    def _open_dm(self, user_id: str) -> str:
        channel_id = self._dm_by_user.get(user_id)
        if channel_id is None:
            channel_id = "D" + user_id[1:] if user_id[:1] in "UW" else f"D{user_id}"
            while channel_id in self._channels:
                channel_id += "X"
            self._channels[channel_id] = Channel(channel_id, user_id, {user_id}, dm_user=user_id)
            self._dm_by_user[user_id] = channel_id
        return channel_id

    def _known_channel(self, channel_arg: Any) -> Channel:
        channel_id = str(channel_arg or "")
        if channel_id.startswith("#"):
            channel_id = next((c.id for c in self._channels.values() if c.name == channel_id[1:]), channel_id)
        channel = self._channels.get(self._dm_by_user.get(channel_id, channel_id))
        if channel is None:
            raise SlackError("channel_not_found")
        return channel

    def _visible_channel(self, channel_arg: Any) -> Channel:
        """A channel as the bot can see it: a private channel it is not in does not exist for it
        (Slack answers `channel_not_found`, as conversations.info and chat.postMessage document)."""
        channel = self._known_channel(channel_arg)
        if channel.private and not channel.bot_member:
            raise SlackError("channel_not_found")
        return channel

    def _postable_channel(self, channel_arg: Any) -> Channel:
        """The channel a bot message goes to; a user id means the bot's DM with them."""
        channel_id = str(channel_arg or "")
        if channel_id in self._users:
            user = self._users[channel_id]
            check_dm_allowed(user)
            return self._channels[self._open_dm(user.id)]
        channel = self._visible_channel(channel_id)
        if channel.dm_user:
            check_dm_allowed(self._users.get(channel.dm_user) or User(channel.dm_user, None, channel.dm_user))
        elif not channel.bot_member:
            raise SlackError("not_in_channel")
        return channel

    def _message_in(self, channel_id: str, ts: Any) -> dict[str, Any]:
        message = next((m for m in self._messages.get(channel_id, []) if m["ts"] == ts), None)
        if message is None:
            raise SlackError("message_not_found")
        return message

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
            "blocks": with_ids(blocks or []),
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
                "blocks": with_ids(blocks or []),
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
            **_view_content(view),
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
        self._views[view_id] = ViewRecord(user, stored)
        return copy.deepcopy(stored)

    def _replace_view(self, record: ViewRecord, view: dict[str, Any]) -> dict[str, Any]:
        record.view |= _view_content(view) | {"hash": self._new_hash()}
        return copy.deepcopy(record.view)

    def _new_hash(self) -> str:
        return f"{time.time():.6f}.{secrets.token_hex(4)}"


def check_dm_allowed(user: User) -> None:
    if user.is_bot:
        raise SlackError("cannot_dm_bot")
    if user.deleted:
        raise SlackError("user_disabled")


def public_message(message: dict[str, Any]) -> dict[str, Any]:
    """A stored message the way Slack shows it in payloads and API answers."""
    return copy.deepcopy({k: v for k, v in message.items() if v is not None and k not in ("channel", "via")})


def _ts_key(ts: str) -> tuple[int, int]:
    seconds, _, micros = ts.partition(".")
    return int(seconds), int(micros or 0)


def _view_content(view: dict[str, Any]) -> dict[str, Any]:
    """What a view's owner gives it (views.open/push/update/publish), as Slack stores it; the rest
    (id, hash, stack, app) is Slack's own."""
    return {
        "title": view.get("title"),
        "submit": view.get("submit"),
        "close": view.get("close"),
        "blocks": with_ids(view.get("blocks", [])),
        "private_metadata": view.get("private_metadata", ""),
        "callback_id": view.get("callback_id", ""),
        "external_id": view.get("external_id", ""),
    }
