"""What a page of `stale`, `upcoming`, `risky` and the admins' Home shows, read in SQL first:
exactly what evaluating every token and sorting them all gives (`report.token_views`), for
tokens on the edges of every rule (the horizon to the microsecond, no last use, no creation
date, exemptions, auto-scoping states, a rollout date) and policies that override the rules."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from bot import db
from bot.domain.deadlines import DeadlineKind
from bot.domain.policy import Policy
from bot.services import report, windows
from bot.slack.blocks.commands import by_severity_key, unused_since
from tests.support.estate import NOW, seed_edge_estate

POLICIES = {
    "default": Policy(),
    "no organisation rule": Policy(org_max_inactive_days=0, org_max_lifetime_days=0),
    "lifetime only, no inactivity": Policy(org_max_inactive_days=0, inactivity_revocation_days=0),
    "rollout date, short watch": Policy(autoscope_rollout_date=date(2026, 2, 1), autoscope_observation_days=7),
    "rules beyond the calendar": Policy(inactivity_revocation_days=10**9, org_max_lifetime_days=10**9),
}


def _everything(session, policy):
    return report.token_views(session=session, policy=policy, now=NOW)


def _rows(views, days):
    rows = [(d, v) for v in views for d in v.evaluation.due_within(NOW, days)]
    return sorted(rows, key=lambda r: (r[0].due_at, r[1].workspace, r[1].token_id))


@pytest.mark.parametrize("policy", POLICIES.values(), ids=POLICIES.keys())
@pytest.mark.parametrize("days", [14, 365])
def test_upcoming_counts_and_first_rows_are_those_of_every_token_evaluated(engine, policy, days):
    seed_edge_estate(engine, days)
    with db.session_scope(engine) as session:
        rows = _rows(_everything(session, policy), days)
        for keep in (1, 7, 50, 10_000):
            found = windows.upcoming(session=session, policy=policy, now=NOW, days=days, keep=keep)

            kinds: dict[DeadlineKind, int] = {}
            for deadline, _ in rows:
                kinds[deadline.kind] = kinds.get(deadline.kind, 0) + 1
            assert found.counts == kinds and list(found.counts) == list(kinds)  # in first-come order
            assert found.tokens == len({v.pk for _, v in rows})
            assert found.overdue == sum(d.due_at <= NOW for d, _ in rows)
            shown = [(d.kind, d.due_at, v.pk) for d, v in found.first]
            assert shown == [(d.kind, d.due_at, v.pk) for d, v in rows[:keep]]
        whole = windows.upcoming(session=session, policy=policy, now=NOW, days=days, keep=1, whole=len(rows))
        assert [(d.kind, v.pk) for d, v in whole.first] == [(d.kind, v.pk) for d, v in rows]  # a short list whole


def test_upcoming_in_one_workspace_counts_only_its_tokens(engine):
    seed_edge_estate(engine, 90)
    policy = Policy()
    with db.session_scope(engine) as session:
        rows = [r for r in _rows(_everything(session, policy), 90) if r[1].workspace == "b"]
        found = windows.upcoming(session=session, policy=policy, now=NOW, days=90, keep=20, workspace="b")
        assert found.total == len(rows) and found.tokens == len({v.pk for _, v in rows})
        assert [(d.kind, v.pk) for d, v in found.first] == [(d.kind, v.pk) for d, v in rows[:20]]


@pytest.mark.parametrize("policy", POLICIES.values(), ids=POLICIES.keys())
def test_due_by_in_sql_keeps_exactly_the_tokens_with_a_deadline_by_then(engine, policy):
    seed_edge_estate(engine, 30)
    with db.session_scope(engine) as session:
        for days in (0, 30):
            horizon = NOW + timedelta(days=days)
            expected = {v.pk for v in _everything(session, policy) if v.evaluation.due_within(NOW, days)}
            narrowed = report.iter_views(
                session=session, policy=policy, now=NOW, where=[windows.due_by(policy, NOW, horizon)]
            )
            assert {v.pk for v in narrowed} == expected


@pytest.mark.parametrize("days", [1, 30, 90])
def test_stale_in_sql_is_the_same_list_in_the_same_order(engine, days):
    seed_edge_estate(engine, days)
    policy = Policy()
    with db.session_scope(engine) as session:
        expected = sorted(
            (v for v in _everything(session, policy) if unused_since(v, NOW, days)),
            key=lambda v: (v.last_used_on is not None, v.last_used_on or v.created_at, v.workspace, v.token_id),
        )
        clause = [windows.unused_since(NOW, days)]
        assert report.count_tokens(session=session, where=clause) == len(expected)
        shown = report.iter_views(
            session=session,
            policy=policy,
            now=NOW,
            where=clause,
            order_by=windows.longest_unused_first(session),
            limit=25,
        )
        assert [v.pk for v in shown] == [v.pk for v in expected[:25]]
        total, first = windows.stale(session=session, policy=policy, now=NOW, days=days, keep=25)
        assert total == len(expected) and [v.pk for v in first] == [v.pk for v in expected[:25]]
        _, every = windows.stale(session=session, policy=policy, now=NOW, days=days, keep=25, whole=total)
        assert [v.pk for v in every] == [v.pk for v in expected]


def test_risky_keeps_the_worst_in_order_and_counts_them_all(engine):
    seed_edge_estate(engine, 30)
    policy = Policy()
    with db.session_scope(engine) as session:
        from bot.domain.findings import FINDING_SEVERITY

        flagged = [v for v in _everything(session, policy) if v.evaluation.findings]
        expected = sorted(flagged, key=lambda v: by_severity_key(v, FINDING_SEVERITY))
        total, worst = windows.risky(session=session, policy=policy, now=NOW, keep=30)
        assert total == len(flagged)
        assert [v.pk for v in worst] == [v.pk for v in expected[:30]]
        _, every = windows.risky(session=session, policy=policy, now=NOW, keep=30, whole=total)
        assert [v.pk for v in every] == [v.pk for v in expected]
        _, cut = windows.risky(session=session, policy=policy, now=NOW, keep=30, whole=total - 1)
        assert [v.pk for v in cut] == [v.pk for v in expected[:30]]
