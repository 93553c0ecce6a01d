"""The HTTP plumbing shared by the sandbox servers.

A `SandboxServer` listens on 127.0.0.1 on an ephemeral port in a background thread, hands every
request to a routing function as a parsed `Request`, records it, and applies injected faults
(status codes, `Retry-After`, latency, dropped connections, a whole server down) before routing.
"""

from __future__ import annotations

import email.utils
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

logger = logging.getLogger(__name__)


@dataclass
class Request:
    """One request as the sandbox saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    time: float
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)

    def arg(self, name: str, default: str | None = None) -> str | None:
        """A query-string, form or JSON-body parameter, in that order."""
        if name in self.query:
            return self.query[name][0]
        if name in self.form:
            return self.form[name]
        if isinstance(self.json, dict) and name in self.json:
            return self.json[name]
        return default

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Response:
    status: int = 200
    body: Any = None  # dict/list -> JSON; bytes/str -> as is
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        if isinstance(self.body, bytes):
            payload = self.body
        elif isinstance(self.body, str):
            payload = self.body.encode()
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        else:
            payload = json.dumps(self.body if self.body is not None else {}).encode()
            headers.setdefault("Content-Type", "application/json; charset=utf-8")
        return payload, headers


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    times: int
    retry_after: float | None = None
    delay: float = 0.0
    drop: bool = False
    body: Any = None
    after: int = 0  # matching requests answered normally before the fault starts

    def matches(self, request: Request) -> bool:
        return self.method in ("*", request.method) and bool(self.path.search(request.path))


Router = Callable[[Request], Response]
FaultBody = Callable[[Fault], Any]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms stall
    server: _Server

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The `Date` header (sent with every answer by `send_response`) from the machine's real clock.

        Real services send their own clock's time (RFC 9110 section 6.6.1), whatever the client's
        clock says; tests move the client's clock with freezegun, which patches `time.time` in every
        thread but not `clock_gettime`, so the sandboxes keep answering with the real time."""
        if timestamp is None:
            timestamp = time.clock_gettime(time.CLOCK_REALTIME)
        return email.utils.formatdate(timestamp, usegmt=True)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("sandbox %s: " + format, self.server.owner.name, *args)

    def _handle(self) -> None:
        owner = self.server.owner
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            time=time.time(),
        )
        content_type = request.header("content-type") or ""
        if body and "json" in content_type:
            try:
                request.json = json.loads(body)
            except ValueError:
                request.json = None
        elif body and "x-www-form-urlencoded" in content_type:
            request.form = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
        owner._record(request)
        response = owner._respond(request)
        if response is None:  # a dropped connection
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        payload, headers = response.encoded()
        self.send_response(response.status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # hold hundreds of concurrent connections
    owner: SandboxServer


class SandboxServer:
    """Serve `router` on 127.0.0.1:<ephemeral> from a background thread; a context manager."""

    def __init__(self, name: str, router: Router, fault_body: FaultBody) -> None:
        self.name = name
        self._router = router
        self._fault_body = fault_body
        self._faults: list[Fault] = []
        self._lock = threading.RLock()
        self._down = False
        self.requests: list[Request] = []
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle -------------------------------------------------------------------------------
    def start(self) -> SandboxServer:
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.owner = self
        self._httpd = httpd
        # A short poll interval: shutdown() waits up to one interval, and tests stop many sandboxes.
        self._thread = threading.Thread(
            target=lambda: httpd.serve_forever(poll_interval=0.05), name=f"sandbox-{self.name}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def port(self) -> int:
        assert self._httpd is not None, "the sandbox is not started"
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # faults ----------------------------------------------------------------------------------
    def fail(
        self,
        method: str,
        path_regex: str,
        status: int,
        times: int = 1,
        retry_after: float | None = None,
        delay: float = 0.0,
        drop: bool = False,
        body: Any = None,
        after: int = 0,
    ) -> None:
        fault = Fault(
            method.upper(), re.compile(path_regex), status, times, retry_after, delay, drop, body, after
        )
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def down(self) -> None:
        """Every request gets its connection dropped until `up()`."""
        self._down = True

    def up(self) -> None:
        self._down = False

    # internals -------------------------------------------------------------------------------
    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def _take_fault(self, request: Request) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(request):
                    if fault.after > 0:
                        fault.after -= 1
                        return None
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _respond(self, request: Request) -> Response | None:
        if self._down:
            return None
        fault = self._take_fault(request)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.drop:
                return None
            if fault.status:
                headers = {}
                if fault.retry_after is not None:
                    seconds = float(fault.retry_after)
                    headers["Retry-After"] = str(int(seconds) if seconds.is_integer() else seconds)
                body = fault.body if fault.body is not None else self._fault_body(fault)
                return Response(fault.status, body, headers)
        try:
            return self._router(request)
        except Exception:  # a sandbox bug must be visible, not a hung client
            logger.exception("sandbox %s failed on %s %s", self.name, request.method, request.path)
            return Response(500, {"error_code": "INTERNAL_ERROR", "message": "sandbox error"})
