"""The ASGI app of HTTP mode: Slack's requests, health, readiness and metrics.

Small enough not to need a web framework: a router over (method, path). Bolt's dispatch runs on
the event loop: a listener only acks and hands its work to threads of its own, so it never waits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import Engine, text

from bot import metrics
from bot.slack.http import SlackEndpoint

logger = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024  # Slack's payloads are far smaller; anything bigger is refused unread
# Limits of the HTTP server (`serve --http`, and the health server of Socket Mode), against slow
# or many clients: Slack sends a whole request at once and answers within seconds.
REQUEST_TIMEOUT = 10  # seconds to send a whole request (headers and body); slower clients are cut off
KEEP_ALIVE = 5  # seconds an idle keep-alive connection stays open
MAX_CONNECTIONS = 200  # connections and requests at once; past it, new requests get 503
MAX_HEADER_BYTES = 16 * 1024  # larger headers get 431 (or 400 from h11, when sent in pieces)
Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


# The auto-scoping events webhook (bot/services/events.py): raw body and lower-cased headers in,
# (HTTP status, JSON-able answer) out.
WebhookHandler = Callable[[bytes, dict[str, str]], tuple[int, dict[str, Any]]]


class WebApp:
    def __init__(
        self,
        bolt: Any,  # the bolt app (bot.slack.app.build_app)
        engine: Engine,
        signing_secret: str | None,
        webhook: WebhookHandler | None = None,
        readiness: Callable[[], tuple[bool, str]] | None = None,
    ) -> None:
        self._engine = engine
        self._webhook = webhook
        self._extra_readiness = readiness
        # Checked here too, before the body is parsed: a forged or garbled request gets a 401 or
        # 400 and never reaches a listener.
        # None in Socket Mode: Slack's requests come over the socket, and this app serves only
        # health, readiness and metrics.
        self._slack_endpoint = SlackEndpoint(bolt, signing_secret) if signing_secret else None

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if sum(len(name) + len(value) for name, value in scope.get("headers") or []) > MAX_HEADER_BYTES:
            await _respond(send, 431, b"request headers too large")  # h11 bounds only headers sent in pieces
            return
        method, path = scope["method"], scope["path"]
        if (method, path) == ("POST", "/slack/events") and self._slack_endpoint is not None:
            body = await _read_body(receive)
            if body is None:
                await _respond(send, 413, b"request body too large")
                return
            await self._slack(scope, body, send)
        elif (method, path) == ("GET", "/healthz"):
            await _respond(send, 200, b"ok")
        elif (method, path) == ("POST", "/events/autoscope") and self._webhook is not None:
            body = await _read_body(receive)
            if body is None:
                await _respond(send, 413, b"request body too large")
                return
            status, answer = await asyncio.to_thread(self._webhook, body, _headers(scope))
            await _respond(
                send, status, json.dumps(answer).encode(), [(b"content-type", b"application/json")]
            )
        elif (method, path) == ("GET", "/metrics"):
            await _respond(send, 200, metrics.exposition(), [(b"content-type", CONTENT_TYPE_LATEST.encode())])
        elif (method, path) == ("GET", "/readyz"):
            ready, detail = await asyncio.to_thread(self._ready)
            await _respond(send, 200 if ready else 503, detail.encode())
        else:
            await _respond(send, 404, b"not found")

    async def _slack(self, scope: dict[str, Any], body: bytes, send: Send) -> None:
        started = time.perf_counter()
        endpoint = self._slack_endpoint
        headers = _headers(scope)
        refused = endpoint.refusal(body, headers)
        if refused is not None:
            status, why = refused
            logger.warning("slack: refused a request (%s): %s", status, why)
            await _respond(send, status, why.encode())
            return
        try:
            request = endpoint.request(body, scope.get("query_string", b"").decode("latin-1"), headers)
        except ValueError:  # signed, but not a payload Slack sends (bad JSON)
            logger.warning("slack: refused a request (400): malformed request body")
            await _respond(send, 400, b"malformed request body")
            return
        # On the event loop itself: every listener only checks the payload, acks and hands its work
        # to its threads (bot/slack/listeners/lazy.py), so this is brief and never waits on I/O,
        # and a hop to a thread and back would cost more than it (each waits for the interpreter).
        status, out_headers, out_body = endpoint.dispatch(request)
        metrics.ACK_SECONDS.observe(time.perf_counter() - started)
        await _respond(send, status, out_body, out_headers)

    def _ready(self) -> tuple[bool, str]:
        try:
            with self._engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as error:  # any database failure means not ready
            logger.error("readiness: database unreachable: %s", type(error).__name__)
            return False, "database unreachable"
        if self._extra_readiness is not None:
            return self._extra_readiness()
        return True, "ready"


def _headers(scope: dict[str, Any]) -> dict[str, str]:
    return {
        name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers") or []
    }


async def _read_body(receive: Receive) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":  # gone, or cut off for being too slow
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = list(headers or [])
    if not any(name.lower() == b"content-type" for name, _ in headers):
        headers.append((b"content-type", b"text/plain; charset=utf-8"))
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def server_options() -> dict[str, Any]:
    """uvicorn's settings that bound slow and numerous clients (see the limits above)."""
    return {
        "http": bounded_protocol(),
        "limit_concurrency": MAX_CONNECTIONS,
        "timeout_keep_alive": KEEP_ALIVE,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
    }


def bounded_protocol() -> type:
    """uvicorn's h11 protocol, with a deadline for receiving each request: uvicorn itself only
    times out idle keep-alive connections, so a client sending its headers a byte at a time
    (slow-loris) would hold a connection for ever."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class BoundedH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()  # the next request on this connection gets its own deadline

        def connection_lost(self, exc: Exception | None) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline = self.loop.call_later(REQUEST_TIMEOUT, self._too_slow)

        def _too_slow(self) -> None:
            self._deadline = None
            receiving = self.conn.their_state in (h11.IDLE, h11.SEND_BODY)
            started = self.conn.their_state is h11.SEND_BODY or bool(self.conn.trailing_data[0])
            if self.transport.is_closing() or not receiving:
                return
            if started:  # an idle keep-alive connection is uvicorn's to close; say so only for these
                logger.info("http: a client took over %s s to send its request; connection closed",
                            REQUEST_TIMEOUT)
            self.transport.close()

    return BoundedH11Protocol


class BackgroundServer:
    """Serve an ASGI app with uvicorn from a background thread on 127.0.0.1 (the demo and tests;
    `tokenbot serve --http` runs uvicorn in the foreground instead)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        import socket

        import uvicorn

        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host, self.port = self._socket.getsockname()[:2]
        self._server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", **server_options())
        )
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> BackgroundServer:
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="tokenbot-http", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the HTTP server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._socket.close()
