"""The rules over 100,000 tokens, and the reminder plan for them, without I/O.

Measures `evaluate()` over 100,000 varied tokens (goal: under 1 s) and the pure part of planning
reminders for them: which deadlines have reached a reminder step, and whether quiet hours hold them.

    .venv/bin/python bench/evaluate.py [--tokens 100000]
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.domain.ladder import current_step, held_for_quiet_hours  # noqa: E402
from bot.domain.policy import Policy, evaluate  # noqa: E402
from bot.domain.tokens import TokenFacts  # noqa: E402
from bot.services.report import without_gc  # noqa: E402

ZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo", "Australia/Sydney"]


def tokens(count: int, now: datetime) -> list[TokenFacts]:
    rng = random.Random(11)
    made = []
    for index in range(count):
        created = now - timedelta(days=rng.randint(1, 700), seconds=rng.randint(0, 86400))
        running = rng.random() < 0.4
        made.append(TokenFacts(
            workspace=f"ws{index % 20}", token_id=f"{index:032x}", owner_kind=rng.choice(["user", "service_principal"]),
            owner_active=rng.random() > 0.05, owner_resolved=rng.random() > 0.02,
            comment=rng.choice(["nightly etl", "tmp", "old dashboard", "", "ci", "do not delete"]),
            created_at=created,
            expires_at=None if rng.random() < 0.3 else created + timedelta(days=rng.randint(30, 730)),
            last_used_on=None if rng.random() < 0.1 else (now - timedelta(days=rng.randint(0, 120))).replace(
                hour=0, minute=0, second=0, microsecond=0),
            scopes=rng.choice([("all-apis",), ("sql",), ("sql", "jobs"), ("authentication",)]),
            inferred_scopes=("sql",), autoscope_state="AUTOSCOPE_STATE_RUNNING" if running else None,
            observation_started_at=created if running else None, enforcement_at=None,
            workspace_max_lifetime_days=730))
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=100_000)
    args = parser.parse_args()
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    policy = Policy()
    facts = tokens(args.tokens, now)
    gc.collect()

    started = time.perf_counter()
    with without_gc():  # as report.token_views runs it: see without_gc
        evaluations = [evaluate(token, policy, now) for token in facts]
    evaluate_seconds = time.perf_counter() - started

    window = policy.quiet_window()
    started = time.perf_counter()
    due = held = 0
    for index, evaluation in enumerate(evaluations):
        for deadline in evaluation.deadlines:
            step = current_step(deadline.due_at, now, policy.reminder_days)
            if step:
                due += 1
                if held_for_quiet_hours(now, ZONES[index % len(ZONES)], window, deadline.due_at):
                    held += 1
    plan_seconds = time.perf_counter() - started

    print(f"tokens: {args.tokens:,}")
    print(f"evaluate: {evaluate_seconds:.2f} s ({evaluate_seconds / args.tokens * 1e6:.1f} us/token)   goal < 1 s")
    print(f"reminder plan: {plan_seconds:.2f} s for {due:,} due deadlines ({held:,} held for quiet hours)")
    ok = evaluate_seconds < 1.0
    print(f"summary: evaluate {evaluate_seconds:.2f} s, plan {plan_seconds:.2f} s for {args.tokens:,} tokens: "
          f"{'goal met' if ok else 'GOAL MISSED'}")


if __name__ == "__main__":
    main()
