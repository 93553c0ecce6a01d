"""`tokenbot serve` as it runs in production: a subprocess (`python -m bot serve [--http]`)
pointed at the Databricks and Slack sandboxes by its environment. Over HTTP it answers health,
readiness, metrics and a really signed click; in Socket Mode it connects to the Slack sandbox's
WebSocket, answers commands, clicks, modals and the Home tab over it, and reconnects after Slack's
refresh and a dropped socket. Both stop on SIGTERM; two of them sharing PostgreSQL run each
reminder job once between them; two on one SQLite file do not both run a scheduler."""

from __future__ import annotations

import json
import os
import re
import select as readiness
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot import db
from bot.models import Decision
from tests.support.bot_server import wait_for
from tests.support.slack_helpers import ADMIN_USER
from tests.support.world import observed_token

OWNER, OTHER = "U0OWEN", "U0OLGA"
STOPPED_WITHIN = 30.0  # seconds from SIGTERM to exit: 1-4 on a quiet machine, within serve's own 9 s budget


@dataclass
class Served:
    process: subprocess.Popen
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except OSError:
            return 0, ""

    def wait_ready(self) -> Served:
        wait_for(
            lambda: self.get("/healthz")[0] == 200 or self.process.poll() is not None,
            timeout=180,  # a loaded machine imports slowly
            what="serve to start",
        )
        assert self.process.poll() is None, self.logs()
        return self

    def logs(self) -> str:
        return self.log.read_text()

    def json_logs(self) -> list[dict]:
        return [json.loads(line) for line in self.logs().splitlines() if line.startswith("{")]

    def stop(self, timeout: float = 60.0) -> tuple[int, float]:
        """SIGTERM; the exit code and how long it took (serve allows itself STOP_BUDGET, 9 s; a busy
        machine can stretch that, so the tests allow STOPPED_WITHIN)."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        return code, time.monotonic() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def reserved_port() -> socket.socket:
    """A port kept from every other socket while the caller holds this one: it is bound but never
    listens, with SO_REUSEADDR, so the server (which sets it too) can still bind and listen on it,
    while no other bind(0) or outgoing connection of the tests running alongside is handed it."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
def serve(tmp_path):
    """Start `python -m bot serve --http ...` in the test's environment; stopped at the end."""
    started: list[Served] = []
    reservations: list[socket.socket] = []

    def start(
        *args: str, env: dict[str, str | None] | None = None, wait: bool = True, http: bool = True
    ) -> Served:
        """`env`: variables to set, or to remove (None)."""
        reservations.append(reserved_port())
        port = reservations[-1].getsockname()[1]
        log = tmp_path / f"serve-{port}.log"
        mode = ["--http"] if http else []
        environment = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2]), **(env or {})}
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", *mode, "--port", str(port), "--host", "127.0.0.1", *args],
            env={name: value for name, value in environment.items() if value is not None},
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),
            cwd=tmp_path,
        )
        served = Served(process, port, log)
        started.append(served)
        if wait:
            served.wait_ready()
        return served

    yield start
    for served in started:
        if served.process.poll() is None:
            served.process.kill()
            served.process.wait()
    for reservation in reservations:
        reservation.close()


def reminded(world, owner: str, email: str, token_id: str):
    """A token of `owner` due in 5 days, synced, and its reminder in the owner's DMs."""
    world.slack.add_user(id=owner, email=email, name=owner)
    prod = world.org["prod"]
    observed_token(prod, prod.add_user(user_name=email), token_id, 5)


def reference_in(message: dict, token_id: str) -> str:
    for block in message["blocks"]:
        if block.get("block_id", "").startswith("token:") and token_id in json.dumps(block):
            return block["block_id"].removeprefix("token:")
    raise AssertionError(f"{token_id} is not in the message")


def metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}}" if labels else f"{name} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# ---------------------------------------------------------------------------------------------


def test_serve_http_answers_health_readiness_metrics_and_a_click_then_stops_on_sigterm(world, serve):
    reminded(world, OWNER, "owen@example.com", "tok-served")
    world.sync()
    world.remind()
    [message] = world.slack.messages(OWNER)
    served = serve()

    assert served.get("/healthz") == (200, "ok")
    assert served.get("/readyz") == (200, "ready")
    reference = reference_in(message, "tok-served")
    response = world.slack.click(
        served.url + "/slack/events",
        OWNER,
        message["channel"],
        message["ts"],
        "token_snooze",
        block_id=f"actions:{reference}",
    )
    assert response.status == 200
    with db.session_scope(world.engine) as session:
        wait_for(
            lambda: (
                session.execute(select(Decision.status).where(Decision.action == "snooze")).scalars().all()
            ),
            what="the snooze decision",
        )
    status, metrics = served.get("/metrics")
    assert status == 200
    assert metric(metrics, "tokenbot_slack_ack_seconds_count") >= 1
    wait_for(
        lambda: metric(
            served.get("/metrics")[1], "tokenbot_decisions_total", action="snooze", status="applied"
        ),
        what="the decision counted",
    )
    assert "tokenbot_job_runs_total" in metrics or "tokenbot_job_runs" in metrics

    code, seconds = served.stop()

    assert (code, seconds < STOPPED_WITHIN) == (0, True), served.logs()
    assert "SIGTERM received: finishing the work in hand, then exiting" in served.logs()
    assert "Traceback" not in served.logs()


def test_serve_in_socket_mode_answers_slack_over_the_socket_and_survives_reconnects(world, serve):
    reminded(world, OWNER, "owen@example.com", "tok-served")
    world.sync()
    world.remind()
    [message] = world.slack.messages(OWNER)
    reference = reference_in(message, "tok-served")
    slack, socket = world.slack, world.slack.socket
    served = serve(http=False)
    wait_for(lambda: served.get("/readyz") == (200, "ready"), timeout=30, what="readiness")
    assert socket.open_connections() == 1

    def answered(text: str) -> dict:
        before = len(slack.response_url_posts())
        assert slack.command(None, ADMIN_USER, text, mode="socket").status == 200
        return wait_for(lambda: slack.response_url_posts()[before:], timeout=30, what=f"/tokens {text}")[0]["body"]

    assert "/tokens" in answered("help")["text"]
    # A modal submission with a field error: the errors come back in the ack, the modal stays open.
    slack.click(None, OWNER, message["channel"], message["ts"], "token_confirm_scopes",
                block_id=f"actions:{reference}", mode="socket")
    modal = wait_for(lambda: slack.views(OWNER, open_only=True), timeout=30, what="the modal")[-1]
    refused = slack.submit(None, OWNER, modal["id"], {"scopes": {"choose": []}}, mode="socket")
    assert refused.json()["response_action"] == "errors" and "scopes" in refused.json()["errors"]
    assert slack.views(OWNER, open_only=True)[-1]["id"] == modal["id"]
    # The App Home.
    slack.home_opened(None, OWNER, mode="socket")
    wait_for(lambda: [v for v in slack.views(OWNER) if v["type"] == "home"], timeout=30, what="the Home tab")

    # Slack refreshes the link: the bot opens a new connection and carries on over it.
    assert socket.disconnect("refresh_requested", close_after=1.0) == 1
    wait_for(lambda: socket.connections_opened() == 2, timeout=30, what="the new connection")
    # The socket drops while Slack's API is unreachable: not ready until it is back and reconnected.
    slack.down()
    socket.drop()
    # One read per poll: what /readyz says first may be that Slack does not answer auth.test.
    down = (503, "not ready: the Socket Mode connection to Slack is down (reconnecting)")
    wait_for(lambda: served.get("/readyz") == down, timeout=30, what="not ready: the socket down")
    assert served.get("/healthz") == (200, "ok")
    slack.up()
    wait_for(lambda: served.get("/readyz") == (200, "ready"), timeout=30, what="ready again")

    # Revoke from /tokens, confirmed with its button, over the new connection.
    answer = answered("revoke tok-served nobody uses it")
    assert "nobody uses it" in json.dumps(answer)
    shown = slack.ephemerals(ADMIN_USER)[-1]
    slack.click(None, ADMIN_USER, shown["channel"], shown["ts"], "token_revoke", mode="socket")
    with db.session_scope(world.engine) as session:
        wait_for(
            lambda: session.execute(select(Decision.status).where(Decision.action == "revoke")).scalars().all()
            == ["applied"],
            timeout=30,
            what="the revoke",
        )
    assert "tok-served" not in {t["token_id"] for t in world.org["prod"].tokens()}

    code, seconds = served.stop()

    assert (code, seconds < STOPPED_WITHIN) == (0, True), served.logs()
    wait_for(lambda: socket.open_connections() == 0, what="the socket closed")
    logs = served.logs()
    assert "connected to Slack in Socket Mode" in logs and "Traceback" not in logs


def test_readiness_fails_and_says_why_when_slack_refuses_the_bot_token(world, serve):
    refused = serve("--no-scheduler", env={"SLACK_BOT_TOKEN": "xoxb-wrong"}, wait=False)
    served = serve("--no-scheduler")
    world.slack.bot_token = "xoxb-rotated"  # the app was reinstalled: the token it started with is dead

    status, body = served.get("/readyz")

    assert (status, body) == (503, "not ready: Slack refuses the bot token (invalid_auth)")
    assert served.get("/healthz") == (200, "ok")  # alive, just not ready
    wait_for(lambda: "Slack refuses the bot token (invalid_auth)" in served.logs(), what="the log line")
    assert refused.process.wait(timeout=60) == 2  # and a token refused at start-up stops it at once
    assert "Slack refused SLACK_BOT_TOKEN" in refused.logs() and "Traceback" not in refused.logs()


def test_serve_refuses_an_unmigrated_database_and_missing_credentials(world, serve, tmp_path):
    fresh = serve(env={"TOKENBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"}, wait=False)
    unsigned = serve(env={"SLACK_SIGNING_SECRET": ""}, wait=False)
    assert fresh.process.wait(timeout=60) == 2
    assert "run `tokenbot db upgrade` first" in fresh.logs()
    assert unsigned.process.wait(timeout=60) == 2
    assert "SLACK_SIGNING_SECRET is not set" in unsigned.logs()


def test_sigterm_during_a_job_lets_it_finish_then_exits_0(world, serve):
    prod = world.org["prod"]
    prod.fail("GET", r"/api/2\.0/token-management/tokens$", 0, delay=1.5)  # a slow listing, once
    served = serve("--job-interval", "sync=1")
    wait_for(lambda: any("token-management/tokens" in r.path for r in prod.requests), timeout=60, what="the sync")

    code, seconds = served.stop()

    assert (code, seconds < STOPPED_WITHIN) == (0, True), served.logs()
    logs = served.logs()
    assert logs.index("SIGTERM received") < logs.index("job sync done") < logs.index("scheduler stopped")
    assert "sync prod: 0 tokens" in logs  # the run in hand finished its work


def test_socket_mode_without_a_connection_exits_2_and_says_why(world, serve):
    missing = serve(http=False, env={"SLACK_APP_TOKEN": None}, wait=False)
    refused = serve(http=False, env={"SLACK_APP_TOKEN": "xapp-1-A0OTHER-1-revoked"}, wait=False)
    # (no scheduler: the one above holds the SQLite file's scheduler lock while it starts)
    wrong_kind = serve("--no-scheduler", http=False, env={"SLACK_APP_TOKEN": world.slack.bot_token}, wait=False)

    assert missing.process.wait(timeout=60) == 2
    assert "SLACK_APP_TOKEN is not set: Socket Mode needs the app-level token" in " ".join(
        missing.logs().split()
    )
    assert refused.process.wait(timeout=60) == 2
    logs = " ".join(refused.logs().split())
    assert "Slack refused to open a Socket Mode connection (invalid_auth): check SLACK_APP_TOKEN" in logs
    assert "Traceback" not in logs and "scheduled job" not in logs  # no job started without a connection
    assert wrong_kind.process.wait(timeout=60) == 2
    assert "(not_allowed_token_type): check SLACK_APP_TOKEN" in " ".join(wrong_kind.logs().split())


def test_socket_mode_exits_2_when_the_websocket_itself_cannot_connect(world, serve):
    world.slack.socket.blocked = True  # Slack hands out a URL, but a proxy refuses the WebSocket

    blocked = serve(http=False, wait=False)

    assert blocked.process.wait(timeout=60) == 2
    logs = " ".join(blocked.logs().split())
    assert "the WebSocket connection to it failed" in logs and "scheduled job" not in logs
    assert "connected to Slack in Socket Mode" not in logs


def test_a_second_serve_on_the_same_sqlite_file_refuses_to_start_its_scheduler(world, serve, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL replicas share the scheduler through the lease instead")
    first = serve()

    second = serve(wait=False)
    answering = serve("--no-scheduler", wait=False)  # a replica that only answers Slack is fine

    assert second.process.wait(timeout=60) == 2
    logs = " ".join(second.logs().split())
    assert f"(pid {first.process.pid}) already runs the scheduler on the SQLite database" in logs
    assert "--no-scheduler" in logs and "PostgreSQL" in logs
    assert answering.wait_ready().get("/readyz")[0] == 200
    assert first.stop()[0] == 0 and answering.stop()[0] == 0


def test_two_serves_on_postgresql_run_each_reminder_job_once_between_them(world, serve, database_url):
    if database_url.startswith("sqlite"):
        pytest.skip("several replicas need PostgreSQL")
    reminded(world, OWNER, "owen@example.com", "tok-owen")
    reminded(world, OTHER, "olga@example.com", "tok-olga")
    world.sync()
    options = ("--job-interval", "reminders=1", "--job-interval", "sync=3600")
    json_logs = {"TOKENBOT_LOG_FORMAT": "json"}
    replicas = [serve(*options, env=json_logs, wait=False) for _ in range(2)]
    for replica in replicas:
        replica.wait_ready()

    def reminder_runs(status: str) -> list[float]:
        """When each run (from either replica) started, from the JSON logs."""
        found = []
        for replica in replicas:
            for line in replica.json_logs():
                if match := re.fullmatch(rf"job reminders {status}(?: in ([0-9.]+) s)?.*", line["message"]):
                    ended = datetime.fromisoformat(line["time"]).timestamp()
                    found.append(ended - float(match.group(1) or 0))
        return sorted(found)

    wait_for(lambda: len(reminder_runs("done")) >= 3 and reminder_runs("skipped"), timeout=30, what="runs")
    for replica in replicas:
        assert replica.stop()[0] == 0

    assert len(world.slack.messages(OWNER)) == 1 and len(world.slack.messages(OTHER)) == 1
    # Each period (1 s) had one run: no two runs, from either replica, closer than half a period.
    starts = reminder_runs("done")
    assert all(later - earlier >= 0.5 for earlier, later in zip(starts, starts[1:], strict=False)), starts


def test_readiness_asks_slack_at_most_every_30_s_and_stays_up_when_slack_is_unreachable():
    from slack_sdk import WebClient

    from bot.sandbox.slack import SlackSandbox
    from bot.slack.health import SlackAuthCheck

    clock = [0.0]
    with SlackSandbox() as slack:
        check = SlackAuthCheck(
            WebClient(token=slack.bot_token, base_url=slack.url), monotonic=lambda: clock[0]
        )
        assert check() == (True, "ready") and len(slack.calls("auth.test")) == 1
        slack.bot_token = "xoxb-rotated"
        clock[0] += 10
        assert check() == (True, "ready") and len(slack.calls("auth.test")) == 1  # the cached answer
        clock[0] += 21
        assert check() == (False, "not ready: Slack refuses the bot token (invalid_auth)")
    nowhere = WebClient(
        token="xoxb-x", base_url=f"http://127.0.0.1:{free_port()}/api/", timeout=1, retry_handlers=[]
    )
    assert SlackAuthCheck(nowhere)() == (True, "ready (Slack unreachable)")


def test_slow_clients_are_cut_off_while_others_are_served(world, serve):
    """Slow-loris: 50 connections trickle their headers a byte a second, a few send half a body,
    one sends nothing. Each is closed within a bound, and ordinary requests succeed meanwhile."""
    from bot.web import REQUEST_TIMEOUT

    served = serve("--no-scheduler")
    slow: list[socket.socket] = []
    for number in range(50):
        sock = socket.create_connection(("127.0.0.1", served.port), timeout=30)
        if number % 10 == 0:  # whole headers, then half the body announced
            sock.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"a" * 50)
        else:
            sock.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\n")
        slow.append(sock)
    slow.append(socket.create_connection(("127.0.0.1", served.port), timeout=30))  # says nothing
    started = time.monotonic()
    still_open, answered = set(slow), []

    while still_open and time.monotonic() - started < REQUEST_TIMEOUT + 45:
        answered.append(served.get("/healthz"))
        readable, _, _ = readiness.select(list(still_open), [], [], 1.0)
        for sock in list(still_open):
            try:
                if sock in readable and sock.recv(4096) == b"":
                    still_open.discard(sock)  # the server closed it
                elif sock is not slow[-1]:
                    sock.sendall(b"X")  # one more byte
            except OSError:  # reset, or a write to a closed connection
                still_open.discard(sock)
    seconds = time.monotonic() - started
    for sock in slow:
        sock.close()

    assert not still_open, f"{len(still_open)} slow connections still open after {seconds:.0f} s"
    assert answered and set(answered) == {(200, "ok")}, answered
    assert served.get("/healthz") == (200, "ok")


def test_serve_shortens_the_interpreters_switch_interval_before_it_starts(world, monkeypatch):
    """A burst of clicks runs on about a hundred threads: serve hands the interpreter over every
    0.5 ms, not Python's 5 ms, so a click holding SQLite's write turn is not kept waiting."""
    from bot import serve as served

    asked: list[float] = []
    monkeypatch.setattr(served.sys, "setswitchinterval", asked.append)
    world.slack.bot_token = "xoxb-rotated"  # serve stops at start-up, right after the setting
    with pytest.raises(served.ServeError, match="Slack refused SLACK_BOT_TOKEN"):
        served.serve(world.settings, world.engine, http=True, scheduler=False)
    assert asked == [served.SWITCH_INTERVAL] and served.SWITCH_INTERVAL <= 0.001
