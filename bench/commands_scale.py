"""Admin commands and the App Home at scale: `tokenbot serve --http` as a subprocess over a
database of 100,000 tokens (bulk inserted), sent at once as really signed requests from the Slack
sandbox's driver: `/tokens export`, `stale 1`, `upcoming 365`, `risky` and `mine` (each typed by
its own admin) and two admins opening the App Home, plus an owner's Accept click half a second in.

Reports, per request, the time from sending it to its answer reaching the Slack sandbox (the
response_url post, or `views.publish` for a Home), the peak RSS of the serve process (sampled from
/proc every 20 ms), and when the owner's click was answered and its decision applied.
Goals: every answer under 5 s, peak memory under 400 MB, the click answered and applied in 5 s.

    .venv/bin/python bench/commands_scale.py [--tokens 100000] [--workspaces 5]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from serving import start_serve  # noqa: E402 - bench/, the script's own folder
from sqlalchemy import insert, select  # noqa: E402

from bot import clock, db  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.databricks.gateway import gateway_factory  # noqa: E402
from bot.models import Decision, Principal, Token, Workspace  # noqa: E402
from bot.sandbox import DatabricksSandbox, SlackSandbox  # noqa: E402
from bot.services import inventory  # noqa: E402

COMMANDS = {"U0EXPORT": "export", "U0STALE": "stale 1", "U0UPCOMING": "upcoming 365", "U0RISKY": "risky"}
MINE_ADMIN = "U0000007"  # an admin who owns some of the 100,000 tokens: `mine`
HOME_ADMINS = ("U0HOME1", "U0HOME2")
OWNER = "U0OWNER"
OWNERS_PER_WORKSPACE = 4000
SERVICE_PRINCIPALS = 40  # of those owners


def seed(engine, workspaces: int, tokens: int) -> None:
    """The estate, in bulk: what `tokenbot sync` would have stored, the way sync_scale seeds it."""
    rng = random.Random(7)
    now = clock.now()
    names = [f"ws{w}" for w in range(workspaces)]
    with db.session_scope(engine) as session:
        session.execute(
            insert(Workspace),
            [
                {
                    "name": n,
                    "host": f"https://{n}.example",
                    "status": "ok",
                    "last_sync_at": now,
                    "last_success_at": now,
                }
                for n in names
            ],
        )
        principals = []
        for name in names:
            for i in range(OWNERS_PER_WORKSPACE):
                robot = i < SERVICE_PRINCIPALS
                principals.append(
                    {
                        "workspace": name,
                        "principal_id": f"p{i}",
                        "kind": "service_principal" if robot else "user",
                        "email": None if robot else f"user{i}@example.com",
                        "application_id": f"app-{i}" if robot else None,
                        "display_name": f"Owner {i}",
                        "active": True,
                        "slack_user_id": None if robot else f"U{i:07d}",
                    }
                )
        session.execute(insert(Principal), principals)
        rows = []
        for n in range(tokens):
            created = now - timedelta(days=rng.randint(1, 700), seconds=rng.randint(0, 86400))
            used = None if rng.random() < 0.1 else now - timedelta(days=rng.randint(0, 120))
            rows.append(
                {
                    "workspace": names[n % workspaces],
                    "token_id": f"{n:08x}{rng.getrandbits(64):016x}",
                    "owner_id": f"p{rng.randrange(OWNERS_PER_WORKSPACE)}",
                    "comment": rng.choice(["etl", "nightly job", "tmp", "dashboards", "", "ci pipeline"]),
                    "created_at": created,
                    "first_seen_at": created,
                    "last_seen_at": now,
                    "expires_at": None
                    if rng.random() < 0.3
                    else created + timedelta(days=rng.randint(30, 730)),
                    "last_used_on": used.replace(hour=0, minute=0, second=0, microsecond=0) if used else None,
                    "scopes": rng.choice([["all-apis"], ["sql"], ["sql", "jobs"], ["authentication"]]),
                    "inferred_scopes": ["sql"],
                    "backfill_scopes": [],
                    "previous_scopes": [],
                    "autoscope_state": rng.choice(
                        ["AUTOSCOPE_STATE_RUNNING", "AUTOSCOPE_STATE_COMPLETED", None]
                    ),
                }
            )
            if len(rows) == 10_000:
                session.execute(insert(Token), rows)
                rows = []
        if rows:
            session.execute(insert(Token), rows)


class PeakRss(threading.Thread):
    """The largest resident set of a process, and of it with its child processes (the workers that
    run its scans) summed at each sample, read from /proc."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_kb, self.family_peak_kb, self.running = pid, 0, 0, True

    def children(self) -> list[int]:
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                if int(stat.read_text().rpartition(")")[2].split()[1]) == self.pid:
                    found.append(int(stat.parent.name))
            except (OSError, ValueError):
                pass
        return found

    @staticmethod
    def rss_kb(pid: int) -> int:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def now_kb(self) -> int:
        return self.rss_kb(self.pid)

    def cpu_seconds(self) -> float:
        """User and system time of the process, of its children it has waited for, and of those
        still running (/proc/<pid>/stat, fields 14 to 17): a worker's time counts in whichever."""
        ticks = 0
        for pid in (self.pid, *self.children()):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            ticks += int(fields[11]) + int(fields[12])
            if pid == self.pid:
                ticks += int(fields[13]) + int(fields[14])
        return ticks / os.sysconf("SC_CLK_TCK")

    def settle(self, limit: float = 30) -> float:
        """Wait until the process and its children use no CPU (the scan workers it starts with
        the app have imported what they need); returns the seconds waited."""
        started = time.monotonic()
        used = self.cpu_seconds()
        while time.monotonic() - started < limit:
            time.sleep(0.5)
            now = self.cpu_seconds()
            if now - used < 0.05:
                break
            used = now
        return time.monotonic() - started

    def run(self) -> None:
        children, sampled = self.children(), 0
        while self.running:
            serve = self.now_kb()
            if sampled % 10 == 0:  # looking for new children costs more than reading a status
                children = self.children()
            sampled += 1
            self.peak_kb = max(self.peak_kb, serve)
            self.family_peak_kb = max(self.family_peak_kb, serve + sum(map(self.rss_kb, children)))
            time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokens", type=int, default=100_000)
    parser.add_argument("--workspaces", type=int, default=5)
    args = parser.parse_args()

    with DatabricksSandbox() as databricks, SlackSandbox() as slack, tempfile.TemporaryDirectory() as tmp:
        now = clock.now()
        admins = [*COMMANDS, MINE_ADMIN, *HOME_ADMINS]
        for user in admins:
            slack.add_user(id=user, email=f"{user.lower()}@admins.example", name=user)
        slack.add_user(id=OWNER, email="owner@example.com", name="Owner")
        databricks.add_token(
            owner_id=databricks.add_user(user_name="owner@example.com"),
            comment="reports",
            created_at=now - timedelta(days=50),
            last_used_at=now - timedelta(days=55),
            scopes=["sql"],
            inferred_scopes=["sql"],
            autoscope_state="AUTOSCOPE_STATE_COMPLETED",
            expires_at=now + timedelta(days=300),
        )
        config = Path(tmp) / "tokenbot.toml"
        admin_list = ", ".join(f'"{a}"' for a in admins)
        config.write_text(
            f'[[workspaces]]\nname = "prod"\nhost = "{databricks.url}"\ntoken_env = "BENCH_TOKEN"\n'
            f'[slack]\nadmins = [{admin_list}]\n[policy]\nquiet_hours = "off"\n'
        )
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("TOKENBOT_", "DATABRICKS_", "SLACK_"))
        }
        env.update(
            BENCH_TOKEN=databricks.admin_token,
            TOKENBOT_CONFIG=str(config),
            TOKENBOT_DATABASE_URL=f"sqlite:///{tmp}/bench.db",
            SLACK_BOT_TOKEN=slack.bot_token,
            SLACK_SIGNING_SECRET=slack.signing_secret,
            TOKENBOT_SLACK_API_URL=slack.url,
            TOKENBOT_LOG_LEVEL="WARNING",
        )
        os.environ.update(env)
        settings = load_settings()
        engine = db.make_engine(settings.database_url)
        db.migrate(engine)
        started = time.perf_counter()
        seed(engine, args.workspaces, args.tokens)
        inventory.sync_workspaces(
            engine=engine,
            workspaces=[("prod", databricks.url)],
            policy=settings.policy,
            gateway_for=gateway_factory(settings.workspaces, settings.databricks),
        )
        print(
            f"seeded {args.tokens:,} tokens in {args.workspaces} workspaces (+1 synced) in "
            f"{time.perf_counter() - started:.1f} s"
        )

        log = open(Path(tmp) / "serve.log", "w+b")  # noqa: SIM115 - read back on failure
        server, base = start_serve(env, log, timeout=60)
        events = base + "/slack/events"

        def answered(user: str, after: int = 0) -> dict | None:
            posts = [p for p in slack.response_url_posts() if p["user"] == user]
            return posts[after] if len(posts) > after else None

        def wait(what: str, found, limit: float = 120):
            until = time.monotonic() + limit
            while (value := found()) is None:
                if time.monotonic() > until or server.poll() is not None:
                    server.kill()
                    log.seek(0)
                    sys.exit(f"no {what}:\n" + log.read().decode()[-3000:])
                time.sleep(0.02)
            return value

        # The owner's own list, as they would have it on screen before clicking Accept on it.
        slack.command(events, OWNER, "mine")
        wait("answer to the owner's /tokens mine", lambda: answered(OWNER))
        shown = slack.ephemerals(OWNER)[-1]
        block_id = next(
            b["block_id"] for b in shown["blocks"] if b.get("block_id", "").startswith("actions:")
        )

        rss = PeakRss(server.pid)
        settled = rss.settle()
        before_mb = rss.now_kb() / 1024
        workers_before = rss.children()
        family_before_mb = (rss.now_kb() + sum(map(rss.rss_kb, workers_before))) / 1024
        cpu_before = rss.cpu_seconds()
        rss.start()
        sent: dict[str, float] = {}
        click: dict[str, float] = {}

        def type_command(user: str, text: str) -> None:
            sent[user] = time.time()
            slack.command(events, user, text)

        def open_home(user: str) -> None:
            sent[user] = time.time()
            slack.home_opened(events, user)

        def accept() -> None:
            time.sleep(0.5)
            click["sent"] = time.time()
            response = slack.click(
                events, OWNER, shown["channel"], shown["ts"], "token_accept", block_id=block_id
            )
            click["answered"] = click["sent"] + response.elapsed
            click["status"] = response.status

        senders = [threading.Thread(target=type_command, args=(u, t)) for u, t in COMMANDS.items()]
        senders.append(threading.Thread(target=type_command, args=(MINE_ADMIN, "mine")))
        senders += [threading.Thread(target=open_home, args=(u,)) for u in HOME_ADMINS]
        senders.append(threading.Thread(target=accept))
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()

        times: dict[str, float] = {}
        for user, text in [*COMMANDS.items(), (MINE_ADMIN, "mine")]:
            post = wait(f"answer to /tokens {text}", lambda u=user: answered(u))
            times[f"/tokens {text}"] = post["time"] - sent[user]
            if text == "export":
                assert "Sent" in post["body"]["text"], post["body"]["text"]
        for user in HOME_ADMINS:
            published = wait(
                f"Home of {user}",
                lambda u=user: next(
                    (c for c in slack.calls("views.publish") if c["args"].get("user_id") == u), None
                ),
            )
            times[f"App Home of {user}"] = published["time"] - sent[user]

        def applied():
            with db.session_scope(engine) as session:
                return session.execute(
                    select(Decision.updated_at, Decision.created_at).where(
                        Decision.action == "accept", Decision.status == "applied"
                    )
                ).first()

        stamps = wait("the owner's accept applied", applied)
        # The decision's own stamps (the serve process's clock, this machine's): when it began and
        # when it was recorded as applied.
        click["claimed"] = stamps[1].timestamp()
        applied_at = (stamps[0] or stamps[1]).timestamp()
        cpu_seconds = rss.cpu_seconds() - cpu_before
        rss.running = False
        rss.join()
        [upload] = slack.files()
        lines = upload["content"].count(b"\r\n")
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

    peak_mb = rss.peak_kb / 1024
    family_peak_mb = rss.family_peak_kb / 1024
    click_answer = click["answered"] - click["sent"]
    click_applied = applied_at - click["sent"]
    print(
        f"tokens: {args.tokens:,}; export file: {lines - 1:,} rows; serve RSS before: {before_mb:.0f} MB, "
        f"with its {len(workers_before)} child processes {family_before_mb:.0f} MB (settled for "
        f"{settled:.1f} s after the first answer)"
    )
    for what, seconds in times.items():
        print(f"  {what:<28} {seconds:6.2f} s   goal < 5 s")
    began = click["claimed"] - click["sent"]
    print(f"  owner's Accept click: its decision began {began:.2f} s after the click")
    print(
        f"  owner's Accept click: HTTP {click['status']} in {click_answer:.2f} s, applied after "
        f"{click_applied:.2f} s (its record)   goal: applied < 5 s"
    )
    print(
        f"peak RSS of the serve process: {peak_mb:.0f} MB; with its scan workers (summed): "
        f"{family_peak_mb:.0f} MB   goal < 400 MB"
    )
    print(
        f"CPU time of the serve process and its workers for the whole burst: {cpu_seconds:.1f} s; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    slowest = max(times.values())
    ok = slowest < 5 and family_peak_mb < 400 and click["status"] == 200 and click_applied < 5
    print(
        f"summary: slowest answer {slowest:.1f} s, click applied in {click_applied:.1f} s, "
        f"peak {family_peak_mb:.0f} MB: {'all goals met' if ok else 'GOALS MISSED'}"
    )


if __name__ == "__main__":
    main()
