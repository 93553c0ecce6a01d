"""An estate of tokens on the edges of every rule, written straight into the database: for
the tests that compare what SQL narrows with what evaluating every token gives."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from bot import db
from bot.domain.deadlines import DeadlineKind
from bot.domain.tokens import AUTOSCOPE_COMPLETED, AUTOSCOPE_RUNNING
from bot.models import Exemption, Principal, Token, Workspace

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
TINY = timedelta(microseconds=1)


def _moments(days: int) -> list[datetime | None]:
    """Dates that fall on the edges of `days` days from now and of each rule's days before."""
    horizon = NOW + timedelta(days=days)
    found: list[datetime | None] = [None, NOW, NOW - TINY, NOW + TINY, horizon, horizon + TINY, horizon - TINY]
    for rule in (7, 30, 60, 90, 365):
        edge = horizon - timedelta(days=rule)
        found += [edge, edge + TINY, edge - TINY, NOW - timedelta(days=rule)]
    return found + [NOW - timedelta(days=400), NOW + timedelta(days=400)]


def seed_edge_estate(engine, days: int, count: int = 400, seed: int = 17) -> None:
    rng = random.Random(seed)
    moments = _moments(days)
    states = [AUTOSCOPE_RUNNING, AUTOSCOPE_COMPLETED, None, "AUTOSCOPE_STATE_SOMETHING_NEW"]
    with db.session_scope(engine) as session:
        session.execute(insert(Workspace), [{"name": name, "host": f"https://{name}"} for name in ("B", "a", "b")])
        session.execute(
            insert(Principal),
            [
                {"workspace": ws, "principal_id": f"p{i}", "kind": kind, "active": i != 2, "slack_user_id": None}
                for ws in ("B", "a", "b")
                for i, kind in enumerate(["user", "service_principal", "user", None])
            ],
        )
        rows = []
        for n in range(count):
            last_used = rng.choice(moments)
            rows.append(
                {
                    "workspace": rng.choice(["B", "a", "b"]),
                    "token_id": rng.choice(["x", "X", "_", "0"]) + f"{n:04d}",
                    "owner_id": f"p{rng.randrange(5)}",  # p4: nobody tokenbot knows
                    "comment": rng.choice(["", "etl", "tmp", "  ", "old job", "nightly"]),
                    "created_at": rng.choice(moments),
                    "first_seen_at": rng.choice(moments),
                    "expires_at": rng.choice(moments),
                    "last_used_on": last_used.replace(hour=0, minute=0, second=0, microsecond=0)
                    if last_used and rng.random() < 0.5
                    else last_used,
                    "scopes": rng.choice([[], ["all-apis"], ["sql"], ["authentication", "sql"]]),
                    "inferred_scopes": ["sql"],
                    "backfill_scopes": [],
                    "previous_scopes": [],
                    "autoscope_state": rng.choice(states),
                    "observation_started_at": rng.choice(moments),
                    "enforcement_at": rng.choice(moments) if rng.random() < 0.3 else None,
                    "gone_at": NOW - DAY if rng.random() < 0.05 else None,
                }
            )
        session.execute(insert(Token), rows)
        exemptions = []
        for pk in rng.sample(range(1, count + 1), 60):
            exemptions.append(
                {
                    "token_pk": pk,
                    "deadline_kind": rng.choice([DeadlineKind.ORG_POLICY.value, DeadlineKind.EXPIRY.value]),
                    "until": rng.choice([m for m in moments if m is not None]),
                    "requested_by": "U1",
                    "approved_by": "U2" if rng.random() < 0.8 else None,
                }
            )
        session.execute(insert(Exemption), exemptions)
