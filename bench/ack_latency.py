"""Time to answer Slack under load: `tokenbot serve --http` as a subprocess; 2,000 signed
block_actions at concurrency 50 from the Slack sandbox's driver, while the Databricks sandbox takes
500 ms per call.

Reports p50 / p99 / max time to the HTTP response and how many took over 3 s (goals: p99 under
100 ms, none over 3 s); click-to-outcome, the time from each click to the first `chat.update` of
its message (as the Slack sandbox received it) that shows the token revoked, p50 / p99 / max (goal:
p99 at most 4x the Databricks latency); and checks that exactly one Databricks call happened per
distinct decision (200 tokens, each clicked 10 times: 200 DELETEs).

    .venv/bin/python bench/ack_latency.py [--clicks 2000] [--tokens 200] [--concurrency 50]
                                          [--database-url URL of an empty database]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from serving import start_answer_only, start_serve  # noqa: E402 - bench/, the script's own folder
from sqlalchemy import func, select  # noqa: E402

from bot import clock, db  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.databricks.gateway import gateway_factory  # noqa: E402
from bot.models import Decision  # noqa: E402
from bot.sandbox import DatabricksSandbox, SlackSandbox  # noqa: E402
from bot.services import inventory, reminders  # noqa: E402
from bot.slack.client import make_client  # noqa: E402
from bot.slack.directory import SlackDirectory  # noqa: E402
from bot.slack.messenger import SlackMessenger  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clicks", type=int, default=2000)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--databricks-latency", type=float, default=0.5, help="seconds per call")
    parser.add_argument("--database-url", help="an empty database to use (default: a new SQLite file)")
    args = parser.parse_args()
    latency = args.databricks_latency

    with DatabricksSandbox() as databricks, SlackSandbox() as slack, tempfile.TemporaryDirectory() as tmp:
        now = clock.now()
        for index in range(args.tokens):
            email = f"owner{index}@example.com"
            slack.add_user(id=f"U{index:05d}", email=email, name=f"Owner {index}")
            databricks.add_token(owner_id=databricks.add_user(user_name=email), comment=f"job {index}",
                                 created_at=now - timedelta(days=25), last_used_at=now, scopes=["all-apis"],
                                 inferred_scopes=["sql"], autoscope_state="AUTOSCOPE_STATE_RUNNING",
                                 expires_at=now + timedelta(days=300))
        config = Path(tmp) / "tokenbot.toml"
        config.write_text(f'[[workspaces]]\nname = "prod"\nhost = "{databricks.url}"\ntoken_env = "BENCH_TOKEN"\n'
                          '[policy]\nquiet_hours = "off"\norg_max_inactive_days = 0\norg_max_lifetime_days = 0\n')
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKENBOT_", "DATABRICKS_", "SLACK_"))}
        env.update(BENCH_TOKEN=databricks.admin_token, TOKENBOT_CONFIG=str(config),
                   TOKENBOT_DATABASE_URL=args.database_url or f"sqlite:///{tmp}/bench.db",
                   SLACK_BOT_TOKEN=slack.bot_token,
                   SLACK_SIGNING_SECRET=slack.signing_secret, TOKENBOT_SLACK_API_URL=slack.url,
                   TOKENBOT_LOG_LEVEL="WARNING")
        os.environ.update(env)
        settings = load_settings()
        engine = db.make_engine(settings.database_url)
        db.migrate(engine)
        inventory.sync_workspaces(engine=engine, workspaces=[("prod", databricks.url)], policy=settings.policy,
                                  gateway_for=gateway_factory(settings.workspaces, settings.databricks))
        client = make_client(settings)
        reminders.run(engine=engine, policy=settings.policy, directory=SlackDirectory(client),
                      sender=SlackMessenger(client), admin_channel=None, now=clock.now())
        targets = []
        for index in range(args.tokens):
            [message] = slack.messages(f"U{index:05d}")
            actions = next(b for b in message["blocks"] if b["type"] == "actions")
            targets.append((f"U{index:05d}", message, actions["block_id"]))

        log = open(Path(tmp) / "serve.log", "w+b")  # noqa: SIM115 - read back on failure
        server, base = start_serve(env, log, timeout=30)
        databricks.fail("*", r"/api/2.0/token-management/", 0, times=10**6, delay=latency)
        sent_at = [0.0] * args.clicks  # wall clock, as the sandboxes stamp what they receive

        def click(number: int, base: str = base) -> float:
            user, message, block_id = targets[number % len(targets)]
            sent_at[number] = time.time()
            # Clicks on the message as first shown: the later ones race the bot's update of it.
            response = slack.click(base + "/slack/events", user, message["channel"], message["ts"],
                                   "token_revoke", block_id=block_id, as_shown=message)
            assert response.status == 200, (response.status, response.body[:300])
            return response.elapsed

        started = time.perf_counter()
        try:
            with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
                times = sorted(pool.map(click, range(args.clicks)))
        except BaseException:
            server.kill()
            raise
        clicking = time.perf_counter() - started
        settle = time.monotonic() + 600
        while True:
            with db.session_scope(engine) as session:
                query = select(func.count(Decision.id)).where(Decision.status != "in_progress")
                recorded = session.execute(query).scalar_one()
            # each token's message shows its outcome once its decision is recorded (`chat.update`)
            updates = slack.calls("chat.update")
            updated = {c["args"].get("ts") for c in updates if "Revoked by" in json.dumps(c["args"])}
            if (recorded >= args.clicks and len(updated) >= args.tokens) or time.monotonic() > settle:
                break
            time.sleep(0.5)
        finished = time.perf_counter() - started
        outcomes = click_to_outcome(slack.calls("chat.update"), [t[1]["ts"] for t in targets], sent_at)
        deletes = len([r for r in databricks.requests if r.method == "DELETE"])
        slack_calls = {m: len(slack.calls(m)) for m in ("chat.postEphemeral", "chat.update", "users.info")}
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

        # The same clicks, from the same driver, to a server that only answers: what this machine
        # and this client allow at best.
        floor_server, floor_base = start_answer_only(log, timeout=30)
        try:
            with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
                floor = sorted(pool.map(partial(click, base=floor_base), range(args.clicks)))
        finally:
            floor_server.kill()
            floor_server.wait(timeout=30)

    p50 = statistics.median(times) * 1000
    p99 = times[int(len(times) * 0.99) - 1] * 1000
    slowest = times[-1] * 1000
    over = sum(1 for t in times if t > 3)
    print(f"clicks: {args.clicks} at concurrency {args.concurrency} on {args.tokens} tokens; "
          f"Databricks answering in {latency * 1000:.0f} ms; {os.cpu_count()} CPUs")
    print(f"time to the HTTP response: p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {slowest:.0f} ms, "
          f"over 3 s: {over}   goals: p99 < 100 ms, none over 3 s")
    f50, f99 = statistics.median(floor) * 1000, floor[int(len(floor) * 0.99) - 1] * 1000
    print(f"  the same clicks to a server that only answers (the floor here): p50 {f50:.0f} ms, "
          f"p99 {f99:.0f} ms; tokenbot's p99 is {p99 / f99:.1f}x that")
    print(f"clicks sent in {clicking:.1f} s; all {recorded} decisions recorded after {finished:.1f} s")
    shown = sorted(t for t in outcomes if t is not None)
    missing = len(outcomes) - len(shown)
    o50, o99 = statistics.median(shown), shown[int(len(shown) * 0.99) - 1]
    ratio = o99 / latency
    print(f"click-to-outcome (until the message shows the token revoked), every click: "
          f"p50 {o50 * 1000:.0f} ms, "
          f"p99 {o99 * 1000:.0f} ms ({ratio:.1f}x the Databricks latency), max {shown[-1] * 1000:.0f} ms, "
          f"never shown: {missing}   goal: p99 <= 4x")
    first = sorted(t for t in outcomes[: args.tokens] if t is not None)  # each token's first click
    if first:
        print(f"  first click on each token only: p50 {statistics.median(first) * 1000:.0f} ms, "
              f"p99 {first[max(0, int(len(first) * 0.99) - 1)] * 1000:.0f} ms, max {first[-1] * 1000:.0f} ms")
    print(f"Databricks DELETEs: {deletes} for {args.tokens} distinct decisions (goal: exactly one each)")
    print("Slack calls (rate limits off here; Slack's tiers: chat.update 50+/min, the others 100+/min): "
          + ", ".join(f"{method} {count}" for method, count in slack_calls.items()))
    ok = (p99 < 100 and over == 0 and deletes == args.tokens and recorded >= args.clicks and ratio <= 4
          and missing == 0)
    print(f"summary: ack p99 {p99:.0f} ms, max {slowest:.0f} ms, {over} over 3 s; click-to-outcome p99 "
          f"{ratio:.1f}x; {deletes}/{args.tokens} DELETEs: {'all goals met' if ok else 'GOALS MISSED'}")


def click_to_outcome(
    updates: list[dict], message_ts: list[str], sent_at: list[float]
) -> list[float | None]:
    """For each click (on message `message_ts[i % len]`, sent at `sent_at[i]`): seconds until its
    message first shows the token revoked (0 for a click sent when it already did: what the
    clicker sees then is the outcome); None when it never does."""
    shown: dict[str, float] = {}
    for update in updates:
        if "Revoked by" in json.dumps(update["args"]):
            ts = str(update["args"].get("ts"))
            shown[ts] = min(update["time"], shown.get(ts, update["time"]))
    found: list[float | None] = []
    for number, sent in enumerate(sent_at):
        first = shown.get(message_ts[number % len(message_ts)])
        found.append(None if first is None else max(0.0, first - sent))
    return found

if __name__ == "__main__":
    main()
