"""Slack's side of Socket Mode, played on 127.0.0.1: the WebSocket endpoint that
`apps.connections.open` hands out, speaking the protocol the real slack_sdk clients expect.

What it does (APIS.md "Socket Mode"; slack_sdk/socket_mode sources; Slack's "Socket Mode
implementation" page):

* A URL is good for one connection (its `ticket`); an unknown or used ticket is refused at the
  handshake (HTTP 401). Up to `MAX_CONNECTIONS` may be open at once, as Slack allows per app.
* Each new connection first gets `hello` (`num_connections`, `debug_info`, `connection_info.app_id`).
* `deliver()` sends one envelope (`envelope_id`, `type`, `payload`, `accepts_response_payload`; for
  `events_api` also `retry_attempt` / `retry_reason`) to the newest open connection and waits for the
  app's ack `{"envelope_id", "payload"?}`. An `events_api` envelope not acked within `ack_timeout`
  (Slack's 3 s) is sent again with a new envelope id, `retry_attempt` counting up and
  `retry_reason: "timeout"` (the shape in slack_sdk's own Socket Mode test server and the comment on
  `EventContext.retryReason` in java-slack-sdk), after the delays Slack uses for HTTP retries (at
  once, 1 and 5 minutes). Slash commands and interactions are not retried: past 3 s the user has
  seen Slack's error, and a late ack is recorded as such.
* `disconnect(reason)` sends `{"type": "disconnect", "reason": ...}` and closes the connection
  `close_after` seconds later, as Slack does before refreshing a link; `drop()` cuts every
  connection without a closing handshake (a reset), as a network failure would.
* Pings and pongs are the `websockets` library's own: it answers the client's pings and pings it.

The server runs the `websockets` asyncio server on its own event loop in a background thread; the
driver (driver.py) calls it from ordinary threads.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import socket
import struct
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request as HandshakeRequest
from websockets.http11 import Response as HandshakeResponse

logger = logging.getLogger(__name__)

MAX_CONNECTIONS = 10  # Slack's limit of open Socket Mode connections per app
ACK_TIMEOUT = 3.0  # seconds Slack waits for an envelope's ack
RETRY_DELAYS = (0.0, 60.0, 300.0)  # Slack's retries of an event: at once, after 1 and after 5 minutes
EVENTS_API, SLASH_COMMANDS, INTERACTIVE = "events_api", "slash_commands", "interactive"


class NoConnectionError(ConnectionError):
    """No Socket Mode connection is open: Slack cannot dispatch the request (the user sees an error)."""


@dataclass
class Ack:
    """The app's answer to one delivery."""

    envelope_id: str  # the envelope that was acked (a retry has its own)
    payload: dict[str, Any] | None
    elapsed: float  # seconds from the first send to the ack
    late: bool  # after Slack's ack timeout: the user saw an error, or the event was sent again
    attempts: int  # envelopes sent for this delivery (1 + retries)


@dataclass
class Envelope:
    """One envelope as sent, for tests to inspect."""

    envelope_id: str
    type: str
    payload: dict[str, Any]
    connection: int
    retry_attempt: int | None
    retry_reason: str | None
    sent_at: float
    acked_payload: dict[str, Any] | None = None
    acked_at: float | None = None


@dataclass
class _Connection:
    id: int
    websocket: ServerConnection
    opened_at: float
    greeted: asyncio.Event = field(default_factory=asyncio.Event)  # hello sent: envelopes may follow
    closing: bool = False  # told to disconnect: new envelopes go to another connection
    closed_at: float | None = None


@dataclass
class _Delivery:
    kind: str
    payload: dict[str, Any]
    accepts_response_payload: bool
    retry_attempt: int | None
    retry_reason: str | None
    started: float = field(default_factory=time.monotonic)
    answered: threading.Event = field(default_factory=threading.Event)
    ack: Ack | None = None
    attempts: int = 0
    late: bool = False
    failure: str | None = None


class SocketModeServer:
    """The WebSocket endpoint of Slack's Socket Mode for one app; a context manager."""

    def __init__(
        self,
        *,
        app_id: str,
        ack_timeout: float = ACK_TIMEOUT,
        retry_delays: Sequence[float] = RETRY_DELAYS,
    ) -> None:
        self.app_id = app_id
        self.ack_timeout = ack_timeout
        self.retry_delays = tuple(retry_delays)
        self._lock = threading.RLock()
        self._tickets: set[str] = set()
        self._connections: dict[int, _Connection] = {}
        self._connection_ids = itertools.count(1)
        self._pending: dict[str, _Delivery] = {}
        self.envelopes: list[Envelope] = []
        self.refused: list[str] = []  # why handshakes were refused
        self.blocked = False  # every handshake refused, as by a proxy that lets no WebSocket through
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle -------------------------------------------------------------------------------
    def start(self) -> SocketModeServer:
        started = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def listen() -> Server:
            return await serve(
                self._handle,
                "127.0.0.1",
                0,
                process_request=self._check_ticket,
                process_response=self._register,
                close_timeout=2,
            )

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._server = self._loop.run_until_complete(listen())
            finally:
                started.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="sandbox-slack-socket-mode", daemon=True)
        self._thread.start()
        if not started.wait(10) or self._server is None:
            raise RuntimeError("the Socket Mode server did not start")
        return self

    def stop(self) -> None:
        if self._loop is None or self._server is None:
            return

        async def shut() -> None:
            self._server.close()
            await self._server.wait_closed()

        try:
            asyncio.run_coroutine_threadsafe(shut(), self._loop).result(timeout=10)
        except Exception:  # a stuck connection must not keep the sandbox alive
            logger.warning("sandbox Socket Mode server did not close cleanly", exc_info=True)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._thread is None or not self._thread.is_alive():
            self._loop.close()
        self._loop = self._server = None

    def __enter__(self) -> SocketModeServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "the Socket Mode server is not started"
        return self._server.sockets[0].getsockname()[1]

    # what apps.connections.open hands out ------------------------------------------------------
    def new_url(self) -> str:
        """A one-connection URL, like Slack's `wss://wss-primary.slack.com/link/?ticket=...`."""
        ticket = str(uuid.uuid4())
        with self._lock:
            self._tickets.add(ticket)
        return f"ws://127.0.0.1:{self.port}/link/?ticket={ticket}&app_id={self.app_id}"

    # readers ---------------------------------------------------------------------------------
    def open_connections(self) -> int:
        with self._lock:
            return sum(1 for c in self._connections.values() if c.closed_at is None)

    def connections_opened(self) -> int:
        """Connections ever opened (a reconnect adds one)."""
        with self._lock:
            return len(self._connections)

    # Slack -> app ----------------------------------------------------------------------------
    def deliver(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool,
        retry_attempt: int | None = None,
        retry_reason: str | None = None,
        timeout: float = 30.0,
    ) -> Ack:
        """Send one envelope and wait (up to `timeout`, however late by Slack's clock) for its ack.
        Raises NoConnectionError when no connection is open, TimeoutError when no ack came."""
        if self._loop is None:
            raise NoConnectionError("the app never opened a Socket Mode connection (apps.connections.open)")
        if kind != EVENTS_API and self._newest() is None:
            raise NoConnectionError("no Socket Mode connection is open: Slack would show dispatch_failed")
        delivery = _Delivery(kind, payload, accepts_response_payload, retry_attempt, retry_reason)
        asyncio.run_coroutine_threadsafe(self._run(delivery), self._loop)
        if not delivery.answered.wait(timeout):
            raise TimeoutError(f"the app did not ack the {kind} envelope within {timeout:.0f} s")
        if delivery.ack is None:
            raise NoConnectionError(delivery.failure or "not delivered")
        return delivery.ack

    def disconnect(self, reason: str = "refresh_requested", close_after: float = 5.0) -> int:
        """Tell every open connection to go (`warning`, `refresh_requested`, `link_disabled`) and
        close each `close_after` seconds later; returns how many were told."""
        assert self._loop is not None
        with self._lock:
            targets = [c for c in self._connections.values() if c.closed_at is None and not c.closing]
            for connection in targets:
                connection.closing = True
        message = json.dumps(
            {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-sandbox"}}
        )
        for connection in targets:
            closing = self._send_then_close(connection, message, close_after)
            asyncio.run_coroutine_threadsafe(closing, self._loop)
        return len(targets)

    def drop(self) -> int:
        """Cut every open connection at once, without a closing handshake (a TCP reset)."""
        assert self._loop is not None
        with self._lock:
            targets = [c for c in self._connections.values() if c.closed_at is None]

        def cut() -> None:
            for connection in targets:
                transport = connection.websocket.transport
                sock = transport.get_extra_info("socket")
                if sock is not None:  # linger 0: close() sends a reset, not a FIN
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                transport.abort()

        self._loop.call_soon_threadsafe(cut)
        return len(targets)

    # internals (on the event loop) -------------------------------------------------------------
    def _check_ticket(
        self, websocket: ServerConnection, request: HandshakeRequest
    ) -> HandshakeResponse | None:
        if self.blocked:
            self.refused.append("blocked")
            return websocket.respond(HTTPStatus.FORBIDDEN, "WebSocket connections are not allowed\n")
        split = urlsplit(request.path)
        ticket = (parse_qs(split.query).get("ticket") or [""])[0]
        with self._lock:
            known = split.path.rstrip("/") == "/link" and ticket in self._tickets
            self._tickets.discard(ticket)
        if not known:
            # *unconfirmed*: what Slack answers to a reused or made-up ticket
            self.refused.append("unknown or used ticket")
            return websocket.respond(HTTPStatus.UNAUTHORIZED, "invalid ticket\n")
        return None

    def _register(
        self, websocket: ServerConnection, request: HandshakeRequest, response: HandshakeResponse
    ) -> None:
        """Slack counts a connection from its accepted handshake, so the app may be sent envelopes as
        soon as its `connect()` returns (each waits for the hello, which always comes first)."""
        if response.status_code == HTTPStatus.SWITCHING_PROTOCOLS:
            with self._lock:
                connection = _Connection(next(self._connection_ids), websocket, time.monotonic())
                self._connections[connection.id] = connection

    async def _handle(self, websocket: ServerConnection) -> None:
        with self._lock:
            connection = next(c for c in self._connections.values() if c.websocket is websocket)
            count = sum(1 for c in self._connections.values() if c.closed_at is None)
        try:
            if count > MAX_CONNECTIONS:
                connection.closing = True
                await websocket.send(json.dumps({"type": "disconnect", "reason": "too_many_websockets"}))
                await websocket.close()
                return
            await websocket.send(json.dumps(self._hello(count)))
            connection.greeted.set()
            async for message in websocket:
                self._receive(message)
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                connection.closed_at = time.monotonic()

    def _hello(self, count: int) -> dict[str, Any]:
        return {
            "type": "hello",
            "num_connections": count,
            "debug_info": {
                "host": "applink-sandbox",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": self.app_id},
        }

    def _receive(self, message: str | bytes) -> None:
        try:
            answer = json.loads(message)
        except ValueError:
            logger.warning("sandbox Socket Mode: the app sent something that is not JSON")
            return
        envelope_id = answer.get("envelope_id") if isinstance(answer, dict) else None
        with self._lock:
            delivery = self._pending.pop(envelope_id, None) if envelope_id else None
            sent = next((e for e in self.envelopes if e.envelope_id == envelope_id), None)
            if sent is not None:
                sent.acked_payload, sent.acked_at = answer.get("payload"), time.monotonic()
        if delivery is None or delivery.ack is not None:
            return  # an unknown envelope, or a second ack (of a retry): Slack ignores it
        payload = answer.get("payload")
        elapsed = time.monotonic() - delivery.started
        late = delivery.late or elapsed > self.ack_timeout
        delivery.ack = Ack(envelope_id, payload, elapsed, late, delivery.attempts)
        delivery.answered.set()

    async def _run(self, delivery: _Delivery) -> None:
        delays = self.retry_delays if delivery.kind == EVENTS_API else ()
        for attempt in range(len(delays) + 1):
            if attempt:
                await asyncio.sleep(delays[attempt - 1])
            if delivery.ack is not None:
                return
            connection = self._newest()
            sent = connection is not None and await self._send_envelope(delivery, connection, attempt)
            if sent:
                deadline = time.monotonic() + self.ack_timeout
                while delivery.ack is None and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
                if delivery.ack is not None:
                    return
            delivery.late = True
            if delivery.kind != EVENTS_API:
                if not sent:  # the connection went away under it: Slack could not dispatch it
                    delivery.failure = "the Socket Mode connection closed before the envelope was sent"
                    delivery.answered.set()
                return  # not retried: the ack may still come, and is recorded as late
        if delivery.ack is None and delivery.attempts == 0:
            delivery.failure = "no Socket Mode connection was open for any attempt"
            delivery.answered.set()

    async def _send_envelope(self, delivery: _Delivery, connection: _Connection, attempt: int) -> bool:
        envelope_id = str(uuid.uuid4())
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "payload": delivery.payload,
            "type": delivery.kind,
            "accepts_response_payload": delivery.accepts_response_payload,
        }
        retry_attempt, retry_reason = delivery.retry_attempt, delivery.retry_reason
        if delivery.kind == EVENTS_API:
            if attempt:
                retry_attempt, retry_reason = (retry_attempt or 0) + attempt, "timeout"
            envelope |= {"retry_attempt": retry_attempt or 0, "retry_reason": retry_reason or ""}
        elif retry_attempt is not None:
            envelope |= {"retry_attempt": retry_attempt, "retry_reason": retry_reason or "timeout"}
        with self._lock:
            self._pending[envelope_id] = delivery
            self.envelopes.append(
                Envelope(
                    envelope_id,
                    delivery.kind,
                    delivery.payload,
                    connection.id,
                    envelope.get("retry_attempt"),
                    envelope.get("retry_reason"),
                    time.monotonic(),
                )
            )
        try:
            await asyncio.wait_for(connection.greeted.wait(), timeout=30)
            await connection.websocket.send(json.dumps(envelope))
        except (ConnectionClosed, TimeoutError):
            with self._lock:
                self._pending.pop(envelope_id, None)
            return False
        delivery.attempts += 1
        return True

    async def _send_then_close(self, connection: _Connection, message: str, close_after: float) -> None:
        try:
            await connection.websocket.send(message)
            await asyncio.sleep(close_after)
            await connection.websocket.close(1001, "refreshing")
        except ConnectionClosed:
            pass

    def _newest(self) -> _Connection | None:
        """Where the next envelope goes: the newest open connection, preferring those not told to
        disconnect (Slack picks any open connection; the newest keeps tests deterministic)."""
        with self._lock:
            open_ones = [c for c in self._connections.values() if c.closed_at is None]
        return max(open_ones, key=lambda c: (not c.closing, c.id)) if open_ones else None
