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
from bot.slack.health import SlackAuthCheck
from bot.wiring import Wiring, wire

logger = logging.getLogger(__name__)

STOP_BUDGET = 9.0  # seconds from SIGTERM to exit; orchestrators usually allow 10 before SIGKILL
HTTP_GRACE = 4  # seconds uvicorn gives the requests in hand


class ServeError(Exception):
    """Cannot start: the message says what to fix."""


SWITCH_INTERVAL = 0.0005  # seconds


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
    from bot.slack.app import TokenRefused, build_app

    # How long a thread keeps the interpreter while another waits for it (Python's default: 5 ms).
    # A burst of clicks runs on about a hundred threads; a click holding SQLite's write turn, or
    # the event loop with Slack's answers, waited its 5 ms behind each busy thread in turn. Measured
    # with bench/ack_latency.py: each token's first click p99 from about 6 s to 3.5 s.
    sys.setswitchinterval(SWITCH_INTERVAL)
    wiring = wire(settings, engine)
    try:
        bolt = build_app(settings, wiring.deps, wiring.client, socket_mode=not http)
    except TokenRefused as error:  # auth.test at start-up failed
        raise ServeError(
            f"Slack refused SLACK_BOT_TOKEN ({error}); check it with `tokenbot doctor`"
        ) from None
    except ValueError as error:
        raise ServeError(str(error)) from None
    jobs = _scheduler(wiring, intervals) if scheduler else None
    if jobs is None:
        logger.info("scheduler off (--no-scheduler): no sync, reminders or digests from this process")
    stopping = _Stopping(jobs)
    try:
        if http:
            _serve_http(wiring, bolt, host, port, stopping)
        else:
            _serve_socket_mode(wiring, bolt, host, port, stopping)
    finally:
        stopping.finish()


def _scheduler(wiring: Wiring, intervals: Mapping[str, timedelta] | None):
    from bot.jobs.lease import SchedulerLockError
    from bot.jobs.runners import JobContext
    from bot.jobs.scheduler import Scheduler

    try:
        return Scheduler(JobContext.over(wiring), intervals)
    except SchedulerLockError as error:
        raise ServeError(str(error)) from None


def _readiness(wiring: Wiring) -> SlackAuthCheck:
    """Is Slack usable (the bot's token accepted)? /readyz also says when the admin group cannot be
    read (only slack.admins count then)."""
    admin_problem = getattr(wiring.deps.is_admin, "problem", None)
    return SlackAuthCheck(wiring.probe_client, admin_problem=admin_problem)


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


def _serve_http(wiring: Wiring, bolt, host: str, port: int, stopping: _Stopping) -> None:
    import uvicorn

    from bot.web import WebApp, server_options
    from bot.webhook import make_webhook

    settings, engine = wiring.settings, wiring.engine
    secret = settings.slack_signing_secret.get_secret_value()
    web = WebApp(
        bolt,
        engine,
        secret,
        readiness=_readiness(wiring),
        webhook=make_webhook(engine=engine, settings=settings, gateway_for=wiring.gateway_for),
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


def _serve_socket_mode(wiring: Wiring, bolt, host: str, port: int, stopping: _Stopping) -> None:
    from bot.slack.socket import ConnectionRefused, SocketModeConnection

    connection = SocketModeConnection(bolt, wiring.settings.slack_app_token.get_secret_value())
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda s, _f: stopping.request(s))
    try:
        connection.connect()
    except ConnectionRefused as error:
        raise ServeError(str(error)) from None
    logger.info("tokenbot connected to Slack in Socket Mode")
    stopping.start_jobs()
    try:
        with _health_server(wiring, bolt, host, port, connected=connection.is_connected):
            while not stopping.requested.wait(1.0):
                pass
    finally:
        connection.close()


def _health_server(wiring: Wiring, bolt, host: str, port: int, *, connected: Callable[[], bool]):
    """In Socket Mode too, /healthz, /readyz and /metrics answer on the port (the container's
    HEALTHCHECK and a scraper need them); /slack/events is not served there. Not ready while the
    Socket Mode connection is down (Slack's requests cannot reach this replica)."""
    from bot.web import BackgroundServer, WebApp

    auth = _readiness(wiring)

    def readiness() -> tuple[bool, str]:
        if not connected():
            return False, "not ready: the Socket Mode connection to Slack is down (reconnecting)"
        return auth()

    server = BackgroundServer(WebApp(bolt, wiring.engine, None, readiness=readiness), host=host, port=port)
    logger.info("health, readiness and metrics on http://%s:%s", host, server.port)
    return server
