"""Reminder fan-out: 5,000 owners with a reminder due, Slack's rate limits on.

Measures, in one run:
  - Slack API calls per delivered message on the first run (lookups + posts) and on a second run a
    day later, when the next reminder step is due (goal: 1.0: every lookup is cached);
  - the time to deliver all on the first run against the floor the rate limits allow
    (goal: within 1.2x of it).
The sandbox applies Slack's tiers (Tier 3 for users.lookupByEmail, 50/min) scaled by --speedup so the
run takes minutes, not hours; the floor is computed from the same numbers.

    .venv/bin/python bench/fanout.py [--owners 5000] [--speedup 50]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot import clock, db  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.databricks.gateway import SdkWorkspaceGateway  # noqa: E402
from bot.sandbox import DatabricksSandbox, SlackSandbox  # noqa: E402
from bot.services import inventory, reminders  # noqa: E402
from bot.slack.client import make_client  # noqa: E402
from bot.slack.directory import SlackDirectory  # noqa: E402
from bot.slack.messenger import SlackMessenger  # noqa: E402

TIER3_PER_MINUTE = 50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--owners", type=int, default=5000)
    parser.add_argument("--speedup", type=int, default=50, help="multiply Slack's per-minute tiers by this")
    args = parser.parse_args()
    lookups_per_minute = TIER3_PER_MINUTE * args.speedup

    with DatabricksSandbox() as databricks, SlackSandbox() as slack, tempfile.TemporaryDirectory() as tmp:
        now = clock.now()
        print(f"seeding {args.owners} owners ...")
        for index in range(args.owners):
            email = f"owner{index}@example.com"
            slack.add_user(id=f"U{index:06d}", email=email, name=f"Owner {index}")
            owner = databricks.add_user(user_name=email)
            # Enforcement 8 days away: the 14-day step is due now, the 7-day step tomorrow.
            databricks.add_token(owner_id=owner, comment=f"job {index}", created_at=now - timedelta(days=22),
                                 last_used_at=now, scopes=["all-apis"], inferred_scopes=["sql"],
                                 autoscope_state="AUTOSCOPE_STATE_RUNNING", expires_at=now + timedelta(days=300))
        slack.add_channel(id="C0ADMINS", name="admins")
        config = Path(tmp) / "tokenbot.toml"
        config.write_text(f'[[workspaces]]\nname = "prod"\nhost = "{databricks.url}"\ntoken_env = "BENCH_DB_TOKEN"\n'
                          '[policy]\nquiet_hours = "off"\norg_max_inactive_days = 0\norg_max_lifetime_days = 0\n'
                          '[slack]\nadmin_channel = "C0ADMINS"\n')
        os.environ.update(BENCH_DB_TOKEN=databricks.admin_token, TOKENBOT_CONFIG=str(config),
                          TOKENBOT_DATABASE_URL=f"sqlite:///{tmp}/bench.db", SLACK_BOT_TOKEN=slack.bot_token,
                          TOKENBOT_SLACK_API_URL=slack.url)
        settings = load_settings()
        engine = db.make_engine(settings.database_url)
        db.migrate(engine)
        [result] = inventory.sync_workspaces(
            engine=engine, workspaces=[("prod", databricks.url)], policy=settings.policy,
            gateway_for=lambda _name: SdkWorkspaceGateway(settings.workspaces[0], settings.databricks))
        assert result.ok, result.error
        client = make_client(settings, rate_limit_retries=1000)
        slack.rate_limits(enabled=True, per_minute=lookups_per_minute)

        def run(at):
            before = len(slack.calls())
            started = time.perf_counter()
            summary = reminders.run(engine=engine, policy=settings.policy, directory=SlackDirectory(client),
                                    sender=SlackMessenger(client), admin_channel="C0ADMINS", now=at)
            elapsed = time.perf_counter() - started
            calls = Counter(call["method"] for call in slack.calls()[before:])
            return summary, elapsed, calls

        first, first_time, first_calls = run(now)
        second, second_time, second_calls = run(now + timedelta(days=1))

    owners = args.owners
    # Tier buckets start full (one minute's worth), then refill at the per-minute rate.
    floor = max(0, owners - lookups_per_minute) / lookups_per_minute * 60
    per_message_1 = sum(first_calls.values()) / max(1, first.sent_messages)
    per_message_2 = sum(second_calls.values()) / max(1, second.sent_messages)
    print(f"owners: {owners:,}  lookups allowed: {lookups_per_minute}/min (Tier 3 x {args.speedup})")
    print(f"run 1: {first.sent_messages:,} messages in {first_time:.1f} s; floor {floor:.1f} s "
          f"({first_time / floor if floor else float('nan'):.2f}x); calls {dict(first_calls)}; "
          f"{per_message_1:.2f} calls/message")
    print(f"run 2 (a day later): {second.sent_messages:,} messages in {second_time:.1f} s; calls "
          f"{dict(second_calls)}; {per_message_2:.2f} calls/message")
    ok = first.sent_messages == owners and second.sent_messages == owners and per_message_2 <= 1.0
    ratio = first_time / floor if floor else 0
    ok = ok and (not floor or ratio <= 1.2)
    print(f"summary: {per_message_1:.2f} calls/message first run, {per_message_2:.2f} a day later, "
          f"first run {ratio:.2f}x the rate-limit floor: {'all goals met' if ok else 'GOALS MISSED'}")


if __name__ == "__main__":
    main()
