"""Reminder fan-out: 5,000 owners with a reminder due, right after the first sync, Slack's rate
limits on.

Measures, in one run:
  - Slack API calls per delivered message on the first run: the directory read in bulk after the
    sync (users.list, 200 a page) + any lookups by email + posts (goal: at most 1.05), and on a
    second run a day later, when the next reminder step is due (goal: 1.0: every match is cached);
  - the time of the first run (directory + delivery) against the floor the rate limits allow
    (goal: within 1.2x of it).
Then, with --pacing-owners (default 100, 0 to skip), owners with 12 tokens each whose deadlines are
spread over three weeks, in four time zones with quiet hours on, and the reminder job run every hour
for 22 days (no rate limits: this part counts, it does not time); each afternoon --new-tokens of them
(default 0.1) make a token that expires 16 hours later, which cannot wait for their next message.
It reports DMs per owner per week (median and max over every owner and week, and the most in any
7 days or one local day), and Slack calls per delivered message, a post or the chat.update of a
morning's DM.

The sandbox applies Slack's tiers (Tier 2 for users.list, 20/min; Tier 3 for users.lookupByEmail,
50/min) scaled by --speedup so the run takes minutes, not hours, and chat.postMessage's
workspace-wide limit, which Slack does not publish: --posts-per-minute (default 2,500, the rate the
per-owner lookups allowed before). The floor is computed from the same numbers.

    .venv/bin/python bench/fanout.py [--owners 5000] [--speedup 50] [--posts-per-minute 2500]
                                     [--pacing-owners 100]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from freezegun import freeze_time
from sqlalchemy import select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot import clock, db  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.databricks.gateway import SdkWorkspaceGateway  # noqa: E402
from bot.models import Notification  # noqa: E402
from bot.sandbox import DatabricksSandbox, SlackSandbox  # noqa: E402
from bot.services import inventory, reminders  # noqa: E402
from bot.slack import directory  # noqa: E402
from bot.slack.client import make_client  # noqa: E402
from bot.slack.directory import SlackDirectory  # noqa: E402
from bot.slack.messenger import SlackMessenger  # noqa: E402

TIER2_PER_MINUTE = 20
WORKSPACE_TOML = '[[workspaces]]\nname = "prod"\nhost = "{url}"\ntoken_env = "BENCH_DB_TOKEN"\n'
USERS_PER_PAGE = 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--owners", type=int, default=5000)
    parser.add_argument("--speedup", type=int, default=50, help="multiply Slack's per-minute tiers by this")
    parser.add_argument("--posts-per-minute", type=int, default=2500,
                        help="chat.postMessage's workspace-wide limit (unpublished by Slack)")
    parser.add_argument("--pacing-owners", type=int, default=100,
                        help="owners with 12 tokens over three weeks, run hourly for 22 days (0: skip)")
    parser.add_argument("--new-tokens", type=float, default=0.1,
                        help="share of those owners who make a token expiring in 16 hours each afternoon")
    args = parser.parse_args()
    if args.owners:
        fanout(args)
    if args.pacing_owners:
        pacing(args.pacing_owners, args.new_tokens)


def fanout(args) -> None:
    pages_per_minute, posts_per_minute = TIER2_PER_MINUTE * args.speedup, args.posts_per_minute

    with DatabricksSandbox() as databricks, SlackSandbox() as slack, tempfile.TemporaryDirectory() as tmp:
        now = clock.now()
        print(f"seeding {args.owners} owners ...")
        for index in range(args.owners):
            slack.add_user(id=f"U{index:06d}", email=f"owner{index}@example.com", name=f"Owner {index}")
            # Databricks keeps the case people typed; Slack's emails are lower case.
            owner = databricks.add_user(user_name=f"Owner{index}@Example.com")
            # Enforcement 8 days away: the 14-day step is due now, the 7-day step tomorrow.
            databricks.add_token(owner_id=owner, comment=f"job {index}", created_at=now - timedelta(days=22),
                                 last_used_at=now, scopes=["all-apis"], inferred_scopes=["sql"],
                                 autoscope_state="AUTOSCOPE_STATE_RUNNING",
                                 expires_at=now + timedelta(days=300))
        slack.add_channel(id="C0ADMINS", name="admins")
        settings, engine = configure(tmp, databricks, slack, '[policy]\nquiet_hours = "off"\n'
                                     'org_max_inactive_days = 0\norg_max_lifetime_days = 0\n'
                                     '[slack]\nadmin_channel = "C0ADMINS"\n')
        sync(engine, databricks, settings)
        client = make_client(settings, rate_limit_retries=1000)
        slack.rate_limits(enabled=True, scale=args.speedup, posts_per_minute=posts_per_minute)

        timings: dict[str, float] = {}

        def run(at, first=False):
            before = len(slack.calls())
            started = time.perf_counter()
            if first:  # what the sync job does after the first sync: the whole directory at once
                directory.refresh(engine, client, settings.slack.email_domains_map, at)
                timings["directory"] = time.perf_counter() - started
            summary = reminders.run(engine=engine, policy=settings.policy, directory=SlackDirectory(client),
                                    sender=SlackMessenger(client), admin_channel="C0ADMINS", now=at)
            elapsed = time.perf_counter() - started
            calls = Counter(call["method"] for call in slack.calls()[before:])
            return summary, elapsed, calls

        first, first_time, first_calls = run(now, first=True)
        # A day later: every bucket is full again.
        slack.rate_limits(enabled=True, scale=args.speedup, posts_per_minute=posts_per_minute)
        second, second_time, second_calls = run(now + timedelta(days=1))

    owners = args.owners
    # Buckets start full (one minute's worth), then refill at the per-minute rate; the directory's
    # pages come first, then the posts (no lookups: every owner is matched by the directory).
    pages = math.ceil((owners + 1) / USERS_PER_PAGE)  # the owners and the bot user
    floor = (max(0, pages - pages_per_minute) / pages_per_minute * 60
             + max(0, owners - posts_per_minute) / posts_per_minute * 60)
    # A delivered message is a post, or the update of a morning's DM (both counted as calls too).
    per_message_1 = sum(first_calls.values()) / max(1, first.sent_messages)
    per_message_2 = sum(second_calls.values()) / max(1, second.sent_messages)
    print(f"owners: {owners:,}  users.list pages allowed: {pages_per_minute}/min (Tier 2 x {args.speedup}); "
          f"posts allowed: {posts_per_minute}/min")
    print(f"run 1: {first.sent_messages:,} messages in {first_time:.1f} s; floor {floor:.1f} s "
          f"({first_time / floor if floor else float('nan'):.2f}x); calls {dict(first_calls)}; "
          f"{per_message_1:.2f} calls/message")
    print(f"  of which the directory (users.list + matching {owners:,} owners): {timings['directory']:.1f} s")
    print(f"run 2 (a day later): {second.sent_messages:,} messages in {second_time:.1f} s; calls "
          f"{dict(second_calls)}; {per_message_2:.2f} calls/message")
    ok = first.sent_messages == owners and second.sent_messages == owners
    ok = ok and per_message_1 <= 1.05 and per_message_2 <= 1.0
    ratio = first_time / floor if floor else 0
    ok = ok and (not floor or ratio <= 1.2)
    print(f"summary: {per_message_1:.2f} calls/message first run, {per_message_2:.2f} a day later, "
          f"first run {ratio:.2f}x the rate-limit floor: {'all goals met' if ok else 'GOALS MISSED'}")


TIME_ZONES = ("Europe/Paris", "America/New_York", "Asia/Tokyo", "UTC")
TOKENS_EACH, SPREAD_DAYS, HOURS = 12, 20, 22 * 24


def pacing(owners: int, new_tokens: float) -> None:
    """Owners with many deadlines, the reminder job hourly: how many DMs each gets a week."""
    chance = random.Random(19)
    start = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
    with DatabricksSandbox() as databricks, SlackSandbox() as slack, tempfile.TemporaryDirectory() as tmp:
        print(f"pacing: {owners} owners with {TOKENS_EACH} tokens each over {SPREAD_DAYS} days ...")
        zones, owner_ids = {}, []
        for index in range(owners):
            slack_id, zones[f"P{index:05d}"] = f"P{index:05d}", TIME_ZONES[index % len(TIME_ZONES)]
            slack.add_user(id=slack_id, email=f"many{index}@example.com", name=f"Many {index}",
                           tz=zones[slack_id])
            owner = databricks.add_user(user_name=f"many{index}@example.com")
            owner_ids.append(owner)
            for _ in range(TOKENS_EACH):
                days_left = 1 + chance.random() * SPREAD_DAYS  # enforcement at any hour of those days
                databricks.add_token(owner_id=owner, comment="job", last_used_at=start, scopes=["all-apis"],
                                     created_at=start - timedelta(days=30 - days_left),
                                     inferred_scopes=["sql"], autoscope_state="AUTOSCOPE_STATE_RUNNING",
                                     expires_at=start + timedelta(days=300))
        # Quiet hours 18:00-09:00, the default.
        settings, engine = configure(tmp, databricks, slack,
                                     '[policy]\norg_max_inactive_days = 0\norg_max_lifetime_days = 0\n')
        with freeze_time(start):
            sync(engine, databricks, settings)
        client = make_client(settings)
        before = len(slack.calls())
        started = time.perf_counter()
        for hour in range(HOURS):
            moment = start + timedelta(hours=hour)
            if new_tokens and hour % 24 == 13:  # tokens made along the way: short-lived ones (UTC afternoon)
                for index in chance.sample(range(owners), max(1, round(owners * new_tokens))):
                    databricks.add_token(owner_id=owner_ids[index], comment="short", created_at=moment,
                                         last_used_at=moment, scopes=["sql"],
                                         expires_at=moment + timedelta(hours=16))
                with freeze_time(moment):  # the sync reads the clock
                    sync(engine, databricks, settings)
            # What the hourly sync job does: read the whole directory when that costs fewer calls.
            directory.refresh(engine, client, settings.slack.email_domains_map, moment)
            reminders.run(engine=engine, policy=settings.policy, directory=SlackDirectory(client),
                          sender=SlackMessenger(client), admin_channel=None, now=moment)
        elapsed = time.perf_counter() - started
        calls = Counter(call["method"] for call in slack.calls()[before:])
        with db.session_scope(engine) as session:
            columns = (Notification.recipient, Notification.message_ts, Notification.sent_at)
            rows = session.execute(select(*columns).where(Notification.recipient.like("P%"))).all()
    posted: dict[str, dict[str, datetime]] = defaultdict(dict)  # owner -> message ts -> posted at
    for recipient, ts, sent_at in rows:
        if ts is not None:
            posted[recipient][ts] = min(sent_at, posted[recipient].get(ts, sent_at))
    per_week, worst_7_days, worst_day = [], 0, 0
    for recipient in zones:
        moments = sorted(posted[recipient].values())
        for week in range(3):
            low = start + timedelta(days=7 * week)
            per_week.append(sum(1 for m in moments if low <= m < low + timedelta(days=7)))
        worst_7_days = max([worst_7_days, *(sum(1 for m in moments if a <= m < a + timedelta(days=7))
                                            for a in moments)])
        days = Counter(m.astimezone(ZoneInfo(zones[recipient])).date() for m in moments)
        worst_day = max([worst_day, *days.values()])
    messages = calls["chat.postMessage"] + calls["chat.update"]
    print(f"pacing: {HOURS} hourly runs in {elapsed:.0f} s; calls {dict(calls)}")
    print(f"pacing: DMs per owner per week: median {statistics.median(per_week):g}, max {max(per_week)}; "
          f"most in any 7 days {worst_7_days}, in one local day {worst_day}; "
          f"{sum(calls.values()) / max(1, messages):.2f} calls per delivered message "
          f"({calls['chat.postMessage']} posts + {calls['chat.update']} updates)")


def configure(tmp, databricks, slack, extra_toml: str):
    """The settings and a migrated database for one workspace on these sandboxes."""
    config = Path(tmp) / "tokenbot.toml"
    config.write_text(WORKSPACE_TOML.format(url=databricks.url) + extra_toml)
    os.environ.update(BENCH_DB_TOKEN=databricks.admin_token, TOKENBOT_CONFIG=str(config),
                      TOKENBOT_DATABASE_URL=f"sqlite:///{tmp}/bench.db", SLACK_BOT_TOKEN=slack.bot_token,
                      TOKENBOT_SLACK_API_URL=slack.url)
    settings = load_settings()
    engine = db.make_engine(settings.database_url)
    db.migrate(engine)
    return settings, engine


def sync(engine, databricks, settings) -> None:
    [result] = inventory.sync_workspaces(
        engine=engine, workspaces=[("prod", databricks.url)], policy=settings.policy,
        gateway_for=lambda _name: SdkWorkspaceGateway(settings.workspaces[0], settings.databricks))
    assert result.ok, result.error


if __name__ == "__main__":
    main()
