"""A `tokenbot remind` process killed with SIGKILL in the middle of a 1,000-owner fan-out, then
run again: every owner has exactly one message, give or take the few that were in flight."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta

from sqlalchemy import select

from bot import clock, db
from bot.models import Notification
from bot.services.reminders import DELIVERY_WORKERS
from tests.support.world import RUNNING

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
