"""Specification of shadow enforcement's rules: which of a token's calls the scopes auto-scoping
keeps would deny, and how far the audit log's evidence can be trusted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.findings import Finding
from bot.domain.policy import Policy, evaluate
from bot.domain.scopes import not_covered
from bot.domain.shadow import (
    AuditState,
    ObservedCall,
    Shadow,
    Verdict,
    freshness,
    judge,
    kept_scopes,
    replay,
)
from tests.domain.test_policy import make_token

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
SINCE = NOW - timedelta(days=180)
WINDOW = NOW - timedelta(days=25)


def seen(service: str, action: str, days_ago: int, calls: int = 1, approximate: bool = False) -> ObservedCall:
    last = NOW - timedelta(days=days_ago)
    return ObservedCall(service, action, calls, last - timedelta(days=1), last, approximate)


def test_a_quarterly_jobs_run_would_be_denied_and_jobs_would_allow_it():
    [denied] = replay(
        [seen("databrickssql", "executeStatement", 1, 90), seen("jobs", "runNow", 80, 3)], ["sql"], SINCE
    )

    assert (denied.name, denied.calls, denied.verdict, denied.scope) == (
        "jobs.runNow",
        3,
        Verdict.DENIED,
        "jobs",
    )
    assert denied.last_seen.date().isoformat() == "2026-09-11"


def test_calls_before_the_lookback_and_calls_of_kept_scopes_are_not_listed():
    calls = [seen("jobs", "runNow", 200), seen("databrickssql", "executeStatement", 100)]
    assert replay(calls, ["sql"], SINCE) == ()


def test_full_access_kept_denies_nothing():
    assert replay([seen("webTerminal", "open", 3), seen("jobs", "runNow", 80)], ["all-apis"], SINCE) == ()


def test_the_login_every_use_makes_needs_no_scope():
    assert judge("accounts", "tokenLogin") is None
    assert replay([seen("accounts", "tokenLogin", 3, 40)], [], SINCE) == ()


def test_a_call_no_scope_covers_is_named_as_such():
    assert not_covered("webTerminal", "open") and not_covered("WORKSPACE", "workspaceConfEdit")
    assert not not_covered("workspace", "getStatus")

    [call] = replay([seen("webTerminal", "open", 4, 2)], ["sql"], SINCE)

    assert (call.verdict, call.scope) == (Verdict.NOT_COVERED, None)


def test_a_service_tokenbot_cannot_map_is_unknown_not_guessed():
    [call] = replay([seen("sparkUiProxy", "getLogs", 4)], ["sql"], SINCE)
    assert (call.verdict, call.scope) == (Verdict.UNKNOWN, None)


def test_the_tokens_own_calls_win_over_its_owners_approximate_ones():
    exact, approximate = seen("jobs", "runNow", 80, 1), seen("jobs", "runNow", 10, 7, approximate=True)

    [call] = replay([approximate, exact], ["sql"], SINCE)

    assert (call.calls, call.approximate) == (1, False)


def test_denied_calls_come_by_verdict_then_scope_then_latest_first():
    calls = [
        seen("sparkUiProxy", "getLogs", 2),
        seen("webTerminal", "open", 2),
        seen("jobs", "get", 90),
        seen("clusters", "create", 60),
        seen("jobs", "runNow", 80),
    ]

    names = [c.name for c in replay(calls, ["sql"], SINCE)]

    assert names == ["clusters.create", "jobs.runNow", "jobs.get", "webTerminal.open", "sparkUiProxy.getLogs"]


def test_what_narrowing_keeps_adds_the_tokens_own_calls_seen_in_the_observation_window():
    calls = [
        seen("jobs", "runNow", 3),  # the token's, in the window: Databricks sees it too
        seen("clusters", "list", 2, approximate=True),  # maybe another token's: does not count
        seen("secrets", "get", 40),  # before the window
    ]

    assert kept_scopes(calls, ["sql"], WINDOW) == ("sql", "jobs")
    assert kept_scopes(calls, ["sql"], None) == ("sql",)


def test_shadow_lists_the_scopes_the_denied_calls_need_with_their_calls():
    calls = replay(
        [seen("jobs", "runNow", 80, 3), seen("jobs", "get", 90), seen("webTerminal", "open", 2)],
        ["sql"],
        SINCE,
    )
    shadow = Shadow(
        ("sql",), calls, freshness(read_at=NOW, newest_event_at=NOW, failed_at=None, error=None, now=NOW), 180
    )

    assert shadow.needed_scopes == ("jobs",)
    assert [c.name for c in shadow.reasons()["jobs"]] == ["jobs.runNow", "jobs.get"]
    assert [c.name for c in shadow.of(Verdict.NOT_COVERED)] == ["webTerminal.open"]


@pytest.mark.parametrize(
    ("read_at", "newest", "failed_at", "state"),
    [
        (None, None, None, AuditState.NOT_READ),
        (None, None, NOW - timedelta(hours=1), AuditState.FAILED),
        (NOW - timedelta(days=1), NOW - timedelta(days=1), NOW - timedelta(hours=1), AuditState.FAILED),
        (NOW - timedelta(hours=1), NOW - timedelta(hours=3), NOW - timedelta(days=1), AuditState.FRESH),
        (NOW - timedelta(days=3), NOW - timedelta(days=3), None, AuditState.STALE),
        (NOW - timedelta(hours=1), None, None, AuditState.EMPTY),
        (NOW - timedelta(hours=1), NOW - timedelta(days=3), None, AuditState.DELAYED),
    ],
)
def test_the_audit_logs_freshness_says_what_is_missing_or_late(read_at, newest, failed_at, state):
    found = freshness(read_at=read_at, newest_event_at=newest, failed_at=failed_at, error="boom", now=NOW)
    assert found.state is state
    assert found.has_evidence == (read_at is not None and state is not AuditState.EMPTY)


def test_denied_calls_become_one_rare_api_per_scope_and_one_api_not_covered():
    calls = replay(
        [
            seen("jobs", "runNow", 80, 3),
            seen("clusters", "create", 60, approximate=True),
            seen("webTerminal", "open", 2, 2),
        ],
        ["sql"],
        SINCE,
    )

    evaluation = evaluate(make_token(inferred_scopes=("sql",)), Policy(), NOW, denied=calls)

    found = [
        (f.code, f.detail)
        for f in evaluation.findings
        if f.code in (Finding.RARE_API, Finding.API_NOT_COVERED)
    ]
    assert found == [
        (
            Finding.RARE_API,
            "clusters.create x1, last 2026-10-01 (by the owner, maybe with another token): needs clusters, "
            "which auto-scoping will not keep",
        ),
        (Finding.RARE_API, "jobs.runNow x3, last 2026-09-11: needs jobs, which auto-scoping will not keep"),
        (
            Finding.API_NOT_COVERED,
            "webTerminal.open x2, last 2026-11-28: no scope allows it, manual scopes will not help",
        ),
    ]
