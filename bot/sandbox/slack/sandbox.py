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
  out (socket_mode.py). The driver sends commands, clicks, submissions and events either as
  signed HTTP requests (`mode="http"`) or as Socket Mode envelopes (`mode="socket"`).

State is in memory behind one lock; every request is recorded by the shared `SandboxServer`.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

from bot.sandbox.server import Fault, Request, Response, SandboxServer
from bot.sandbox.slack.driver import SlackDriver
from bot.sandbox.slack.elements import with_ids
from bot.sandbox.slack.limits import (
    MANIFEST_SCOPES,
    RESPONSE_URL_TTL_SECONDS,
    RESPONSE_URL_USES,
    TRIGGER_TTL_SECONDS,
    RateLimits,
)
from bot.sandbox.slack.socket_mode import ACK_TIMEOUT, SocketModeServer
from bot.sandbox.slack.state import APP_ID, ResponseTarget, SlackError
from bot.sandbox.slack.web_api import METHODS, WebApi, message_content

APP_TOKEN = "xapp-1-A0SANDBOX-1-sandbox"  # noqa: S105 - the sandbox app's app-level token

DEFAULT_SCOPES = MANIFEST_SCOPES  # what manifest.yml asks for, so a missing scope fails as in Slack


class SlackSandbox(SlackDriver, WebApi):
    """A Slack workspace with one bot, served on 127.0.0.1; a context manager."""

    def __init__(
        self,
        bot_token: str = "xoxb-sandbox",  # noqa: S107 - a sandbox credential
        signing_secret: str = "sandbox-signing-secret",  # noqa: S107
        *,
        app_token: str = APP_TOKEN,
        scopes: Iterable[str] = DEFAULT_SCOPES,
        trigger_ttl: float | None = TRIGGER_TTL_SECONDS,
        response_url_uses: int = RESPONSE_URL_USES,
        response_url_ttl: float = RESPONSE_URL_TTL_SECONDS,
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
        self._last_sent: tuple[str, str, str, str] | None = None  # for resend_last
        self._rate_limits = RateLimits(clock=clock)  # off until rate_limits()
        self._server = SandboxServer("slack", self._route, _fault_body)
        super().__init__(clock)

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

    # faults and limits -----------------------------------------------------------------------------
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
            self._rate_limits = RateLimits(
                enabled, per_minute, post_per_second, post_burst, scale, posts_per_minute, self._clock
            )

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
        method = METHODS.get(name)
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
            retry_after = self._rate_limits.take(name, method.tier, args)
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
            except SlackError as error:
                body = error.body()
        return Response(200, body, headers)

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
            except SlackError as error:
                return Response(400, error.error)
        return Response(200, {"ok": True})

    def _apply_response_message(self, target: ResponseTarget, message: dict[str, Any]) -> None:
        """Slack's handling of a response_url post: replace or delete the source message, or add one."""
        if message.get("delete_original") and target.message_ts:
            if target.ephemeral:
                self._ephemerals = [e for e in self._ephemerals if e["ts"] != target.message_ts]
            else:
                original = self._message_in(str(target.channel), target.message_ts)
                self._messages[str(target.channel)].remove(original)
            return
        text, blocks = message_content(message, require=True)
        if message.get("replace_original") and target.message_ts:
            pool = self._ephemerals if target.ephemeral else self._messages.get(str(target.channel), [])
            original = next((m for m in pool if m["ts"] == target.message_ts), None)
            if original is None:
                raise SlackError("message_not_found")
            original |= {"text": text or "", "blocks": with_ids(blocks or [])}
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


def _fault_body(fault: Fault) -> dict[str, Any]:
    return {"ok": False, "error": "ratelimited" if fault.status == 429 else "internal_error"}


def _args_of(request: Request) -> dict[str, Any]:
    """The call's arguments, wherever the client put them (query, form or JSON body)."""
    args: dict[str, Any] = {name: values[0] for name, values in request.query.items()}
    args |= request.form
    if isinstance(request.json, dict):
        args |= request.json
    return args
