"""The Web API methods the bot calls (`/api/<method>`), each answering with Slack's shapes and
errors (`ok: false` on HTTP 200); `METHODS` gives each its rate-limit tier and the scopes that allow
it. Authentication, scopes and rate limits are checked before a handler runs (sandbox.py)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.sandbox.slack.blockkit import validate_blocks, validate_view
from bot.sandbox.slack.elements import with_ids
from bot.sandbox.slack.limits import (
    MESSAGE_BLOCK_TEXT_LIMIT,
    MESSAGE_TEXT_LIMIT,
    POST_MESSAGE,
    VIEW_BLOCK_TEXT_LIMIT,
    block_text_size,
    missing_read_scope,
)
from bot.sandbox.slack.socket_mode import SocketModeServer
from bot.sandbox.slack.state import (
    BOT_NAME,
    TEAM_DOMAIN,
    Channel,
    File,
    SlackError,
    SlackWorkspace,
    User,
    check_dm_allowed,
    public_message,
)


class WebApi(SlackWorkspace):
    """The Web API method handlers: each takes the call's arguments and returns the body past `ok`,
    or raises `SlackError`; called with the lock held."""

    bot_token: str
    app_token: str
    scopes: list[str]
    trigger_ttl: float | None
    socket: SocketModeServer
    _socket_started: bool

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
        text, blocks = message_content(args, require=True)
        message = self._store_message(
            channel.id,
            text,
            blocks,
            thread_ts=args.get("thread_ts"),
            attachments=_json_arg(args, "attachments", "invalid_attachments"),
        )
        return {"channel": channel.id, "ts": message["ts"], "message": public_message(message)}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._known_channel(args.get("channel"))
        message = self._message_in(channel.id, args.get("ts"))
        if message["user"] != self.bot_user_id:
            raise SlackError("cant_update_message")
        text, blocks = message_content(args, require=False)
        if text is not None:
            message["text"] = text
        if blocks is not None:
            message["blocks"] = with_ids(blocks)  # an empty list removes them, as in Slack
        if not message["text"] and not message["blocks"] and not message.get("attachments"):
            raise SlackError("no_text")
        message["edited"] = {"user": self.bot_user_id, "ts": self._new_ts()}
        return {
            "channel": channel.id,
            "ts": message["ts"],
            "text": message["text"],
            "message": public_message(message),
        }

    def _chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._known_channel(args.get("channel"))
        message = self._message_in(channel.id, args.get("ts"))
        if message["user"] != self.bot_user_id:
            raise SlackError("cant_delete_message")
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
            raise SlackError("user_not_in_channel")
        text, blocks = message_content(args, require=True)
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
            raise SlackError("users_list_not_supplied")
        if len(users) > 1:
            raise SlackError("not_supported_in_sandbox", detail="multi-person DMs are not emulated")
        user = self._user(users[0])
        check_dm_allowed(user)
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
        needed = missing_read_scope(channel.kind, self.scopes)
        if needed:
            raise SlackError("missing_scope", needed=needed, provided=",".join(self.scopes))
        return {"channel": self._channel_object(channel)}

    def _users_lookup_by_email(self, args: dict[str, Any]) -> dict[str, Any]:
        email = str(args.get("email") or "").lower()
        for user in self._users.values():
            # Slack answers users_not_found for deactivated users here (users.info still returns them).
            if user.email and user.email.lower() == email and not user.deleted:
                return {"user": self._user_object(user)}
        raise SlackError("users_not_found")

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
                raise SlackError("invalid_cursor") from None
            start = next((i for i, u in enumerate(ordered) if u.id == after), -1)
            if start < 0:
                raise SlackError("invalid_cursor")
        limit = str(args.get("limit") or "0")
        if not limit.isdigit():
            raise SlackError("invalid_arguments")
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
            raise SlackError("no_such_subteam")
        include_disabled = _truthy(args.get("include_disabled"))
        users = [
            u for u in group["users"] if include_disabled or not self._users.get(u, User(u, None, u)).deleted
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
            raise SlackError("push_limit_reached")
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
            raise SlackError("not_found")
        if args.get("hash") and args["hash"] != record.view["hash"]:
            raise SlackError("hash_conflict")
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
            raise SlackError("hash_conflict")
        return {"view": self._replace_view(record, view)}

    def _files_get_upload_url(self, args: dict[str, Any]) -> dict[str, Any]:
        filename, length = args.get("filename"), args.get("length")
        if not filename or length is None or not str(length).isdigit():
            raise SlackError("invalid_arguments")
        file = File(self._new_id("F"), str(filename), int(length), alt_txt=args.get("alt_txt"))
        self._files[file.id] = file
        return {"upload_url": f"{self.base_url}/upload/{file.id}", "file_id": file.id}

    def _files_complete_upload(self, args: dict[str, Any]) -> dict[str, Any]:
        entries = _json_arg(args, "files", "invalid_arguments")
        if not isinstance(entries, list) or not entries:
            raise SlackError("invalid_arguments")
        files = []
        for entry in entries:
            file = self._files.get(str(entry.get("id")))
            if file is None or file.content is None:
                raise SlackError("file_not_found")
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

    # helpers ---------------------------------------------------------------------------------------
    def _exchange_trigger(self, trigger_id: Any) -> str:
        if not trigger_id:
            raise SlackError(
                "invalid_arguments", response_metadata={"messages": ["[ERROR] missing trigger_id"]}
            )
        trigger = self._triggers.get(str(trigger_id))
        if trigger is None:
            raise SlackError("invalid_trigger_id")
        if trigger.used:
            raise SlackError("exchanged_trigger_id")
        if self.trigger_ttl is not None and self._clock() - trigger.issued_at > self.trigger_ttl:
            raise SlackError("expired_trigger_id")
        trigger.used = True
        return trigger.user

    def _channel_object(self, channel: Channel) -> dict[str, Any]:
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

    def _user_object(self, user: User) -> dict[str, Any]:
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

    def _file_object(self, file: File) -> dict[str, Any]:
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


@dataclass(frozen=True)
class Method:
    """One Web API method: its handler, its rate-limit tier and the scopes that allow it (any one)."""

    handler: Callable[[WebApi, dict[str, Any]], dict[str, Any]]
    tier: int | str
    scopes: tuple[str, ...] = ()


def _blocks_error(error: str, messages: list[str]) -> SlackError:
    metadata = {"messages": [f"[ERROR] {message}" for message in messages]}
    if error == "invalid_blocks":
        return SlackError(error, errors=messages, response_metadata=metadata)
    return SlackError(error, response_metadata=metadata)


def _truthy(value: Any) -> bool:
    return value in (True, 1, "1", "true", "True")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _json_arg(args: dict[str, Any], name: str, error: str) -> Any:
    """A structured argument: a JSON body carries it as is, a form body as a JSON string."""
    value = args.get(name)
    if isinstance(value, str):
        try:
            return json.loads(value) if value.strip() else None
        except ValueError as exc:
            raise SlackError(error) from exc
    return value


def message_content(args: dict[str, Any], *, require: bool) -> tuple[str | None, list[Any] | None]:
    """Text and blocks of a message, checked as Slack does."""
    text = args.get("text")
    blocks = _json_arg(args, "blocks", "invalid_blocks_format")
    if blocks is not None:
        if not isinstance(blocks, list):
            raise SlackError("invalid_blocks_format")
        errors = validate_blocks(blocks)
        if errors:
            raise _blocks_error("invalid_blocks", errors)
        if block_text_size(blocks) > MESSAGE_BLOCK_TEXT_LIMIT:
            raise SlackError("msg_blocks_too_long")
    if text is not None and len(str(text)) > MESSAGE_TEXT_LIMIT:
        raise SlackError("msg_too_long")
    if require and not text and not blocks and not args.get("attachments"):
        raise SlackError("no_text")
    return (None if text is None else str(text)), blocks


def _view_arg(args: dict[str, Any], *, expected_type: str) -> dict[str, Any]:
    view = _json_arg(args, "view", "invalid_arguments")
    errors = validate_view(view)
    if not errors and view["type"] != expected_type:
        errors = [f"must match the `type` of the view: {expected_type} [json-pointer:/view/type]"]
    if errors:
        raise _blocks_error("invalid_arguments", errors)
    if block_text_size(view["blocks"]) > VIEW_BLOCK_TEXT_LIMIT:
        raise SlackError("view_too_large")
    return view


METHODS: dict[str, Method] = {
    "auth.test": Method(WebApi._auth_test, 4),
    "apps.connections.open": Method(WebApi._apps_connections_open, 1, ("connections:write",)),
    "chat.postMessage": Method(WebApi._chat_post_message, POST_MESSAGE, ("chat:write",)),
    "chat.update": Method(WebApi._chat_update, 3, ("chat:write",)),
    "chat.delete": Method(WebApi._chat_delete, 3, ("chat:write",)),
    "chat.postEphemeral": Method(WebApi._chat_post_ephemeral, 4, ("chat:write",)),
    "conversations.open": Method(WebApi._conversations_open, 3, ("im:write", "mpim:write")),
    "conversations.info": Method(
        WebApi._conversations_info, 3, ("channels:read", "groups:read", "im:read", "mpim:read")
    ),
    "users.lookupByEmail": Method(WebApi._users_lookup_by_email, 3, ("users:read.email",)),
    "users.info": Method(WebApi._users_info, 4, ("users:read",)),
    "users.list": Method(WebApi._users_list, 2, ("users:read",)),
    "usergroups.users.list": Method(WebApi._usergroups_users_list, 4, ("usergroups:read",)),
    "views.open": Method(WebApi._views_open, 4),
    "views.push": Method(WebApi._views_push, 4),
    "views.update": Method(WebApi._views_update, 4),
    "views.publish": Method(WebApi._views_publish, 4),
    "files.getUploadURLExternal": Method(WebApi._files_get_upload_url, 4, ("files:write",)),
    "files.completeUploadExternal": Method(WebApi._files_complete_upload, 4, ("files:write",)),
}
