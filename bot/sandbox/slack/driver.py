"""The driver: Slack playing its side toward the bot. Slash commands, clicks, modal submissions and
Home tab opens go to the bot either as signed HTTP requests (`mode="http"`) or as envelopes on its
open Socket Mode connection (`mode="socket"`), with the payloads Slack sends; the bot's answer to a
submission is applied to the modals as Slack would."""

from __future__ import annotations

import copy
import hashlib
import hmac
import http.client
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from bot.sandbox.slack.blockkit import validate_view
from bot.sandbox.slack.elements import element_action, find_element, view_state
from bot.sandbox.slack.socket_mode import EVENTS_API, INTERACTIVE, SLASH_COMMANDS, SocketModeServer
from bot.sandbox.slack.state import (
    TEAM_DOMAIN,
    ResponseTarget,
    SlackWorkspace,
    Trigger,
    ViewRecord,
    public_message,
)

VERIFICATION_TOKEN = "sandbox-verification-token"  # the legacy `token` field of payloads


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


class SlackDriver(SlackWorkspace):
    """The workspace's users acting toward the bot (the sandbox's public driver methods)."""

    signing_secret: str
    socket: SocketModeServer
    _last_sent: tuple[str, str, str, str] | None  # for resend_last

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
                "response_url": self._new_response_url(ResponseTarget("command", user, channel_id)),
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
            found_block_id, element = find_element(message.get("blocks") or [], action_id, block_id)
            target = ResponseTarget("action", user, channel_id, ts, ephemeral)
            payload = self._interaction("block_actions", user) | {
                "container": {
                    "type": "message",
                    "message_ts": ts,
                    "channel_id": channel_id,
                    "is_ephemeral": ephemeral,
                },
                "channel": {"id": channel_id, "name": self._channel_name(channel_id)},
                "message": public_message(message),
                "state": {"values": {}},
                "response_url": self._new_response_url(target),
                "actions": [element_action(element, found_block_id, value, self._new_ts())],
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
            found_block_id, element = find_element(record.view["blocks"], action_id, block_id)
            payload = self._interaction("block_actions", user) | {
                "container": {"type": "view", "view_id": view_id},
                "view": copy.deepcopy(record.view),
                "actions": [element_action(element, found_block_id, value, self._new_ts())],
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
            view["state"] = {"values": view_state(view["blocks"], values)}
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

    # internals -------------------------------------------------------------------------------------
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

    def _issue_trigger(self, user: str) -> str:
        trigger_id = f"{next(self._ids)}.{int(time.time())}.{secrets.token_hex(16)}"
        self._triggers[trigger_id] = Trigger(user, self._clock())
        return trigger_id

    def _new_response_url(self, target: ResponseTarget) -> str:
        response_id = f"{next(self._ids)}{secrets.token_hex(8)}"
        target.issued_at = self._clock()
        self._response_targets[response_id] = target
        return f"{self.base_url}/response/{response_id}"

    def _user_name(self, user_id: str) -> str:
        user = self._users.get(user_id)
        return user.name if user else user_id

    def _channel_name(self, channel_id: str) -> str:
        channel = self._channels.get(channel_id)
        return "directmessage" if channel is None or channel.dm_user else channel.name

    def _find_message(self, channel_id: str, ts: str, user: str) -> tuple[dict[str, Any], bool]:
        for message in self._messages.get(channel_id, []):
            if message["ts"] == ts:
                return message, False
        for ephemeral in self._ephemerals:
            if ephemeral["ts"] == ts and ephemeral["channel"] == channel_id and ephemeral["user"] == user:
                return ephemeral, True
        raise LookupError(f"no message {ts} in {channel_id} (for {user})")

    def _view_record(self, view_id: str, user: str) -> ViewRecord:
        record = self._views.get(view_id)
        if record is None or record.user != user:
            raise LookupError(f"no view {view_id} shown to {user}")
        return record
