"""`tokenbot serve`: the bolt app in Socket Mode or behind uvicorn (HTTP mode), the scheduler next
to it, and a clean stop.

On SIGTERM (or SIGINT) the process stops taking work at once (the scheduler starts no new run; in
HTTP mode uvicorn stops accepting connections and finishes the requests in hand), lets the job in
hand finish, and exits 0 within `STOP_BUDGET` seconds. A job that would take longer is abandoned:
its transaction is rolled back when the process ends and its next run redoes it.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from types import FrameType

from sqlalchemy import Engine

from bot.config import Settings

logger = logging.getLogger(__name__)

STOP_BUDGET = 9.0  # seconds from SIGTERM to exit; orchestrators usually allow 10 before SIGKILL
HTTP_GRACE = 4  # seconds uvicorn gives the requests in hand
READINESS_TIMEOUT = 3  # seconds /readyz waits for Slack's auth.test
SOCKET_PING = 5  # seconds between Socket Mode pings; a connection silent for 4 of them is replaced


class ServeError(Exception):
    """Cannot start: the message says what to fix."""


def serve(
    settings: Settings,
    engine: Engine,
    *,
    http: bool,
    host: str = "0.0.0.0",  # noqa: S104 (a container's port must be reachable from outside it)
    port: int = 3000,
    scheduler: bool = True,
    intervals: Mapping[str, timedelta] | None = None,
) -> None:
    from slack_bolt.error import BoltError

    from bot.slack.app import build_app, make_deps
    from bot.slack.client import make_client

    client = make_client(settings)
    deps = make_deps(settings, engine, client)
    try:
        bolt = build_app(settings, deps, client, socket_mode=not http)
    except BoltError as error:  # auth.test at start-up failed
        raise ServeError(
            f"Slack refused SLACK_BOT_TOKEN ({error}); check it with `tokenbot doctor`"
        ) from None
    except ValueError as error:
        raise ServeError(str(error)) from None
    jobs = _scheduler(settings, engine, client, deps.gateway_for, intervals) if scheduler else None
    if jobs is None:
        logger.info("scheduler off (--no-scheduler): no sync, reminders or digests from this process")
    stopping = _Stopping(jobs)
    try:
        # /readyz says when the admin group cannot be read (only slack.admins count then).
        admin_problem = getattr(deps.is_admin, "problem", None)
        if http:
            _serve_http(settings, engine, bolt, deps.gateway_for, host, port, stopping, admin_problem)
        else:
            _serve_socket_mode(settings, engine, bolt, host, port, stopping, admin_problem)
    finally:
        stopping.finish()


def _scheduler(settings, engine, client, gateway_for, intervals):
    from bot.scheduler import JobContext, Scheduler, SchedulerLockError

    try:
        return Scheduler(
            JobContext(settings=settings, engine=engine, client=client, gateway_for=gateway_for), intervals
        )
    except SchedulerLockError as error:
        raise ServeError(str(error)) from None


class _Stopping:
    """The stop sequence, shared by both modes."""

    def __init__(self, jobs) -> None:
        self._jobs = jobs
        self.requested = threading.Event()
        self._since: float | None = None

    def start_jobs(self) -> None:
        if self._jobs is not None and not self.requested.is_set():
            self._jobs.start()

    def request(self, signum: int | None = None) -> None:
        if not self.requested.is_set():
            self._since = time.monotonic()
            name = signal.Signals(signum).name if signum else "stop"
            logger.info("%s received: finishing the work in hand, then exiting", name)
            if self._jobs is not None:
                self._jobs.pause()  # no new job run from now on
        self.requested.set()

    def finish(self) -> None:
        if self._jobs is None:
            return
        spent = time.monotonic() - (self._since or time.monotonic())
        if self._jobs.shutdown(timeout=max(0.5, STOP_BUDGET - spent)):
            logger.info("scheduler stopped")
            return
        logger.warning(
            "a job is still running after %.0f s; exiting without it (its next run redoes it)", STOP_BUDGET
        )
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # the job's thread would otherwise keep the process alive


def _serve_http(
    settings, engine, bolt, gateway_for, host: str, port: int, stopping: _Stopping, admin_problem=None
) -> None:
    import uvicorn

    from bot.slack.client import make_client
    from bot.slack.health import SlackAuthCheck
    from bot.web import WebApp, server_options

    # Its own client: a probe must answer within seconds, not wait out the retries of real work.
    probe = make_client(settings, rate_limit_retries=0)
    probe.timeout, probe.retry_handlers = READINESS_TIMEOUT, []
    secret = settings.slack_signing_secret.get_secret_value()
    from bot.webhook import make_webhook

    web = WebApp(
        bolt,
        engine,
        secret,
        readiness=SlackAuthCheck(probe, admin_problem=admin_problem),
        webhook=make_webhook(engine=engine, settings=settings, gateway_for=gateway_for),
    )

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            stopping.request(sig)
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        web,
        host=host,
        port=port,
        log_config=None,  # tokenbot's logging (and its redaction) stays in charge
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=HTTP_GRACE,
        **server_options(),  # slow and numerous clients are bounded (bot/web.py)
    )
    # uvicorn re-raises the signal it caught once it has stopped; with this handler in place that
    # only records the request instead of killing the process before the scheduler is stopped.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda s, _f: stopping.request(s))
    stopping.start_jobs()
    logger.info("tokenbot serving HTTP on %s:%s (Slack at /slack/events)", host, port)
    Server(config).run()


def _serve_socket_mode(
    settings, engine, bolt, host: str, port: int, stopping: _Stopping, admin_problem=None
) -> None:
    # slack_sdk's built-in client (no extra dependency): it reconnects by itself after Slack's
    # `disconnect` message, a closed or reset socket, or missed pongs (every `ping_interval` s).
    from slack_bolt.adapter.socket_mode import SocketModeHandler
    from slack_sdk.errors import SlackApiError

    handler = SocketModeHandler(bolt, settings.slack_app_token.get_secret_value(), ping_interval=SOCKET_PING)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda s, _f: stopping.request(s))
    try:
        handler.connect()
    except SlackApiError as error:
        handler.close()  # its threads would otherwise hold the exit up
        code = error.response.get("error") or f"HTTP {error.response.status_code}"
        raise ServeError(
            f"Slack refused to open a Socket Mode connection ({code}): check SLACK_APP_TOKEN (an app-level "
            "token with connections:write) and that Socket Mode is on in the app's settings"
        ) from None
    except Exception as error:
        handler.close()
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ServeError(f"cannot open the Socket Mode connection: {first_line}") from None
    if not handler.client.is_connected():
        # The client logs a failed WebSocket handshake and returns as if connected.
        handler.close()
        raise ServeError(
            "Slack gave a Socket Mode URL but the WebSocket connection to it failed: check that the "
            "network (or a proxy) lets WebSocket connections to Slack through"
        )
    logger.info("tokenbot connected to Slack in Socket Mode")
    stopping.start_jobs()
    try:
        connected, problem = handler.client.is_connected, admin_problem
        with _health_server(settings, engine, bolt, host, port, connected=connected, admin_problem=problem):
            while not stopping.requested.wait(1.0):
                pass
    finally:
        handler.close()


def _health_server(
    settings, engine, bolt, host: str, port: int, *, connected: Callable[[], bool], admin_problem=None
):
    """In Socket Mode too, /healthz, /readyz and /metrics answer on the port (the container's
    HEALTHCHECK and a scraper need them); /slack/events is not served there. Not ready while the
    Socket Mode connection is down (Slack's requests cannot reach this replica)."""
    from bot.slack.client import make_client
    from bot.slack.health import SlackAuthCheck
    from bot.web import BackgroundServer, WebApp

    probe = make_client(settings, rate_limit_retries=0)
    probe.timeout, probe.retry_handlers = READINESS_TIMEOUT, []
    auth = SlackAuthCheck(probe, admin_problem=admin_problem)

    def readiness() -> tuple[bool, str]:
        if not connected():
            return False, "not ready: the Socket Mode connection to Slack is down (reconnecting)"
        return auth()

    server = BackgroundServer(WebApp(bolt, engine, None, readiness=readiness), host=host, port=port)
    logger.info("health, readiness and metrics on http://%s:%s", host, server.port)
    return server
