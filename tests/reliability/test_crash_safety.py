"""Processes killed with SIGKILL, then run again: a `tokenbot remind` in the middle of a 1,000-owner
fan-out (every owner has exactly one message, give or take the few that were in flight), and a
`tokenbot serve` between a Revoke's claim and its record (the next run settles it from what
Databricks says: one DELETE in all)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from bot import clock, db
from bot.models import Decision, Notification, Token
from bot.services.decisions.claims import CLAIM_TIMEOUT
from bot.services.reminders import DELIVERY_WORKERS
from tests.support.bot_server import wait_for
from tests.support.world import RUNNING, observed_token

OWNERS = 1000


def test_a_killed_reminder_run_loses_nothing_and_repeats_at_most_the_messages_in_flight(world):
    prod = world.org["prod"]
    for index in range(OWNERS):
        email = f"owner{index}@example.com"
        world.slack.add_user(id=f"U{index:05d}", email=email, name=f"Owner {index}")
        prod.add_token(owner_id=prod.add_user(user_name=email), comment=f"job {index}",
                       created_at=clock.now() - timedelta(days=25), last_used_at=clock.now(),
                       scopes=["all-apis"], inferred_scopes=["sql"], autoscope_state=RUNNING,
                       expires_at=clock.now() + timedelta(days=300))
    world.sync()
    world.slack.slow("chat.postMessage", 0.02)  # long enough to kill it half-way
    command = [sys.executable, "-m", "bot", "remind"]

    first = subprocess.Popen(command, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(world.slack.calls("chat.postMessage")) < OWNERS // 3:
        assert first.poll() is None, first.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "the first run did not get going"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    sent_before_kill = len(world.slack.calls("chat.postMessage"))
    assert sent_before_kill < OWNERS

    second = subprocess.run(command, env=os.environ.copy(), capture_output=True, text=True, timeout=300,
                            check=False)

    assert second.returncode == 0, second.stderr[-2000:]
    per_owner = Counter()
    for index in range(OWNERS):
        per_owner[len(world.slack.messages(f"U{index:05d}"))] += 1
    assert per_owner[0] == 0, "an owner got no message"
    assert per_owner[1] + per_owner[2] == OWNERS and per_owner[2] <= DELIVERY_WORKERS
    with db.session_scope(world.engine) as session:
        statuses = Counter(session.execute(select(Notification.status)).scalars())
    assert statuses == {"sent": OWNERS}


def serve(tmp_path: Path, name: str, *options: str) -> subprocess.Popen:
    """`tokenbot serve --http` in the test's environment, answering health checks."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--http", "--port", str(port), "--host", "127.0.0.1", *options],
        env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=(tmp_path / f"{name}.log").open("w"),
    )
    process.url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert process.poll() is None, (tmp_path / f"{name}.log").read_text()[-2000:]
        try:
            with urllib.request.urlopen(process.url + "/healthz", timeout=5) as response:  # noqa: S310
                return response.status == 200
        except OSError:
            return False

    wait_for(healthy, timeout=180, what=f"{name} to start")  # a loaded machine imports slowly
    return process


def revokes(world) -> list[Decision]:
    with db.session_scope(world.engine) as session:
        return list(session.execute(select(Decision).where(Decision.action == "revoke")).scalars())


def test_a_serve_killed_between_a_revokes_claim_and_its_record_is_settled_by_the_next_run(world, tmp_path):
    owner = "U0KILL"
    prod = world.org["prod"]
    world.slack.add_user(id=owner, email="kill@example.com", name="Kim")
    observed_token(prod, prod.add_user(user_name="kill@example.com"), "tok-k", 2)
    world.sync()
    world.remind()
    [message] = world.slack.messages(owner)
    action = next(b for b in message["blocks"] if b["type"] == "actions")
    prod.fail("DELETE", r"/token-management/tokens/tok-k", 0, delay=5)  # applied 5 s after it arrives
    first = serve(tmp_path, "first", "--no-scheduler")
    try:
        response = world.slack.click(first.url + "/slack/events", owner, message["channel"], message["ts"],
                                     "token_revoke", block_id=action["block_id"], as_shown=message)
        assert response.status == 200
        wait_for(lambda: [r for r in prod.requests if r.method == "DELETE"], timeout=60, what="the DELETE")
    finally:
        first.send_signal(signal.SIGKILL)  # while it waits for Databricks' answer
        first.wait(timeout=30)

    [claim] = revokes(world)
    assert claim.status == "in_progress" and claim.idempotency_key == f"revoke:{claim.token_pk}"
    wait_for(lambda: "tok-k" not in {t["token_id"] for t in prod.tokens()}, what="Databricks to apply it")
    with db.session_scope(world.engine) as session:  # as if the process had died a while ago
        stopped_at = clock.now() - CLAIM_TIMEOUT - timedelta(minutes=1)
        session.execute(update(Decision).where(Decision.id == claim.id).values(updated_at=stopped_at))

    second = serve(tmp_path, "second", "--job-interval", "rotations=1")
    try:
        wait_for(lambda: revokes(world)[0].status != "in_progress", timeout=120, what="the claim settled")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=60)

    [settled] = revokes(world)
    assert settled.status == "applied" and settled.parameters["settled_after_stop"]
    assert settled.parameters["verified"]
    assert len([r for r in prod.requests if r.method == "DELETE"]) == 1  # checked by reading, never again
    with db.session_scope(world.engine) as session:
        assert session.execute(select(Token.gone_at).where(Token.token_id == "tok-k")).scalar_one() is not None
