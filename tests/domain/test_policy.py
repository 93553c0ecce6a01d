"""Specification of the token rules: deadlines, findings, policy parsing."""

from __future__ import annotations

import ast
import dataclasses
import sys
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path

import pytest
from freezegun import freeze_time
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.deadlines import DEADLINE_LABELS, Deadline, DeadlineKind
from bot.domain.findings import FINDING_LABELS, FINDING_SEVERITY, Finding
from bot.domain.policy import Policy, evaluate, parse_quiet_hours
from bot.domain.shadow import DeniedCall, Verdict
from bot.domain.tokens import (
    AUTOSCOPE_COMPLETED,
    AUTOSCOPE_RUNNING,
    KNOWN_AUTOSCOPE_STATES,
    Exemption,
    TokenFacts,
    is_observing,
)

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def make_token(**overrides: object) -> TokenFacts:
    """A healthy, recently used user token with a 90-day lifetime; override what a test is about."""
    values: dict[str, object] = {
        "workspace": "prod",
        "token_id": "tok-1",
        "owner_kind": "user",
        "owner_active": True,
        "owner_resolved": True,
        "comment": "nightly ETL for finance",
        "created_at": at(2026, 10, 1, 9, 30),
        "expires_at": at(2026, 12, 30, 9, 30),
        "last_used_on": at(2026, 11, 14),
        "scopes": ("sql",),
        "inferred_scopes": ("sql",),
        "autoscope_state": AUTOSCOPE_COMPLETED,
        "observation_started_at": None,
        "enforcement_at": None,
        "workspace_max_lifetime_days": 730,
        "exemptions": (),
    }
    values.update(overrides)
    return TokenFacts(**values)  # type: ignore[arg-type]


def deadline_of(token: TokenFacts, kind: DeadlineKind, policy: Policy | None = None, now: datetime = NOW):
    evaluation = evaluate(token, policy or Policy(), now)
    matching = [deadline for deadline in evaluation.deadlines if deadline.kind == kind]
    assert len(matching) <= 1
    return matching[0] if matching else None


def codes(token: TokenFacts, policy: Policy | None = None, **kwargs: object) -> set[Finding]:
    return set(evaluate(token, policy or Policy(), NOW, **kwargs).finding_codes)  # type: ignore[arg-type]


# --- every rule across its boundary: the day before, the day of, the day after ---------------------------

BOUNDARY_CASES = {
    "autoscope enforcement from the observation start": (
        make_token(autoscope_state=AUTOSCOPE_RUNNING, observation_started_at=at(2026, 10, 2, 8)),
        Policy(),
        DeadlineKind.AUTOSCOPE_ENFORCEMENT,
        at(2026, 11, 1, 8),
    ),
    "autoscope enforcement from creation when the start is unknown": (
        make_token(autoscope_state=AUTOSCOPE_RUNNING, created_at=at(2026, 10, 10, 10)),
        Policy(),
        DeadlineKind.AUTOSCOPE_ENFORCEMENT,
        at(2026, 11, 9, 10),
    ),
    "autoscope enforcement from the rollout date for an older token": (
        make_token(autoscope_state=AUTOSCOPE_RUNNING, created_at=at(2025, 1, 5)),
        Policy(autoscope_rollout_date=date(2026, 6, 1)),
        DeadlineKind.AUTOSCOPE_ENFORCEMENT,
        at(2026, 7, 1),
    ),
    "autoscope enforcement from creation for a token newer than the rollout": (
        make_token(autoscope_state=AUTOSCOPE_RUNNING, created_at=at(2026, 10, 10, 10)),
        Policy(autoscope_rollout_date=date(2026, 6, 1)),
        DeadlineKind.AUTOSCOPE_ENFORCEMENT,
        at(2026, 11, 9, 10),
    ),
    "autoscope enforcement from an event's date": (
        make_token(
            autoscope_state=AUTOSCOPE_RUNNING,
            observation_started_at=at(2026, 10, 2, 8),
            enforcement_at=at(2026, 12, 1),
        ),
        Policy(),
        DeadlineKind.AUTOSCOPE_ENFORCEMENT,
        at(2026, 12, 1),
    ),
    "expiry": (make_token(), Policy(), DeadlineKind.EXPIRY, at(2026, 12, 30, 9, 30)),
    "inactivity from the last use": (
        make_token(last_used_on=at(2026, 9, 1), expires_at=None),
        Policy(),
        DeadlineKind.INACTIVITY_REVOCATION,
        at(2026, 11, 30),
    ),
    "inactivity from creation when never used": (
        make_token(last_used_on=None, created_at=at(2026, 9, 1, 15)),
        Policy(),
        DeadlineKind.INACTIVITY_REVOCATION,
        at(2026, 11, 30, 15),
    ),
    "org policy: inactive": (
        make_token(last_used_on=at(2026, 9, 1)),
        Policy(org_max_inactive_days=60),
        DeadlineKind.ORG_POLICY,
        at(2026, 10, 31),
    ),
    "org policy: lifetime": (
        make_token(created_at=at(2025, 12, 1, 7), last_used_on=at(2026, 11, 10)),
        Policy(org_max_lifetime_days=365),
        DeadlineKind.ORG_POLICY,
        at(2026, 12, 1, 7),
    ),
}


@pytest.mark.parametrize(("token", "policy", "kind", "due_at"), BOUNDARY_CASES.values(), ids=BOUNDARY_CASES)
@pytest.mark.parametrize(
    ("offset", "overdue", "days_left"),
    [(-DAY, False, 1), (timedelta(0), True, 0), (DAY, True, -1)],
    ids=["day before", "day of", "day after"],
)
def test_rule_boundaries(token, policy, kind, due_at, offset, overdue, days_left):
    now = due_at + offset

    deadline = deadline_of(token, kind, policy, now)

    assert deadline is not None
    assert deadline.due_at == due_at
    assert deadline.is_overdue(now) is overdue
    assert deadline.days_left(now) == days_left


def test_deadline_at_exactly_now_has_passed():
    deadline = deadline_of(make_token(), DeadlineKind.EXPIRY)

    assert deadline is not None
    assert deadline.is_overdue(deadline.due_at)
    assert not deadline.is_overdue(deadline.due_at - timedelta(microseconds=1))


def test_days_left_counts_whole_days_rounded_down():
    deadline = Deadline(DeadlineKind.EXPIRY, NOW, "the token expires", "test")

    assert deadline.days_left(NOW - timedelta(days=13, hours=23)) == 13
    assert deadline.days_left(NOW - timedelta(hours=23)) == 0
    assert deadline.days_left(NOW + timedelta(hours=1)) == -1
    assert deadline.remaining(NOW - DAY) == DAY


# --- deadlines: explanations and switches ----------------------------------------------------------------


def test_autoscope_deadline_explains_the_observation_window():
    token = make_token(autoscope_state=AUTOSCOPE_RUNNING, observation_started_at=at(2026, 10, 2, 8))

    deadline = deadline_of(token, DeadlineKind.AUTOSCOPE_ENFORCEMENT)

    assert deadline is not None
    assert deadline.action == "Databricks narrows the token to the scopes it observed"
    assert deadline.reason == "observation started 2026-10-02; enforcement after 30 days"


def test_rollout_date_named_in_the_reason():
    token = make_token(autoscope_state=AUTOSCOPE_RUNNING, created_at=at(2025, 1, 5))

    deadline = deadline_of(
        token, DeadlineKind.AUTOSCOPE_ENFORCEMENT, Policy(autoscope_rollout_date=date(2026, 6, 1))
    )

    assert deadline is not None
    assert "2026-06-01 (auto-scoping rollout date)" in deadline.reason


def test_observation_window_length_comes_from_the_policy():
    token = make_token(autoscope_state=AUTOSCOPE_RUNNING, observation_started_at=at(2026, 10, 2))

    deadline = deadline_of(token, DeadlineKind.AUTOSCOPE_ENFORCEMENT, Policy(autoscope_observation_days=45))

    assert deadline is not None
    assert deadline.due_at == at(2026, 11, 16)


@pytest.mark.parametrize("state", [None, "AUTOSCOPE_STATE_SOMETHING_NEW"])
def test_event_date_counts_while_the_state_is_unreadable(state):
    token = make_token(autoscope_state=state, enforcement_at=at(2026, 12, 1))

    deadline = deadline_of(token, DeadlineKind.AUTOSCOPE_ENFORCEMENT)

    assert deadline is not None
    assert deadline.due_at == at(2026, 12, 1)
    assert "announced by Databricks" in deadline.reason


@pytest.mark.parametrize("state", sorted(KNOWN_AUTOSCOPE_STATES - {AUTOSCOPE_RUNNING}))
def test_event_date_ignored_once_observation_is_over(state):
    token = make_token(autoscope_state=state, enforcement_at=at(2026, 12, 1))

    assert deadline_of(token, DeadlineKind.AUTOSCOPE_ENFORCEMENT) is None
    assert not is_observing(token)


def test_unknown_autoscope_state_is_kept_and_gives_no_enforcement_deadline():
    token = make_token(autoscope_state="AUTOSCOPE_STATE_SOMETHING_NEW")

    evaluation = evaluate(token, Policy(), NOW)

    assert evaluation.token.autoscope_state == "AUTOSCOPE_STATE_SOMETHING_NEW"
    assert DeadlineKind.AUTOSCOPE_ENFORCEMENT not in {deadline.kind for deadline in evaluation.deadlines}


def test_token_that_never_expires_has_no_expiry_deadline():
    assert deadline_of(make_token(expires_at=None), DeadlineKind.EXPIRY) is None


def test_expiry_reason_gives_the_lifetime():
    deadline = deadline_of(make_token(), DeadlineKind.EXPIRY)

    assert deadline is not None
    assert deadline.action == "the token expires"
    assert deadline.reason == "created 2026-10-01 with a 90-day lifetime"


def test_inactivity_reason_says_never_used():
    deadline = deadline_of(make_token(last_used_on=None), DeadlineKind.INACTIVITY_REVOCATION)

    assert deadline is not None
    assert deadline.action == "Databricks revokes the unused token"
    assert (
        deadline.reason
        == "never used since creation on 2026-10-01; Databricks revokes tokens unused for 90 days"
    )


def test_inactivity_rule_off_when_zero():
    assert (
        deadline_of(make_token(), DeadlineKind.INACTIVITY_REVOCATION, Policy(inactivity_revocation_days=0))
        is None
    )


def test_org_policy_takes_the_earlier_rule_and_names_it():
    inactive = make_token(created_at=at(2026, 1, 1), last_used_on=at(2026, 9, 1))
    old = make_token(created_at=at(2025, 12, 1), last_used_on=at(2026, 11, 10))

    enforced = Policy(enforce=True)
    by_inactivity = deadline_of(inactive, DeadlineKind.ORG_POLICY, enforced)
    by_lifetime = deadline_of(old, DeadlineKind.ORG_POLICY, enforced)

    assert by_inactivity is not None and by_lifetime is not None
    assert by_inactivity.action == "tokenbot policy: revoke (inactive over 60 days)"
    assert by_inactivity.reason == "last used 2026-09-01; tokenbot policy allows 60 days without use"
    assert by_lifetime.action == "tokenbot policy: revoke (older than 365 days)"
    assert by_lifetime.reason == "created 2025-12-01; tokenbot policy allows a 365-day life"


def test_with_enforcement_off_the_org_policy_promises_no_revocation():
    inactive = make_token(created_at=at(2026, 1, 1), last_used_on=at(2026, 9, 1))

    deadline = deadline_of(inactive, DeadlineKind.ORG_POLICY)  # enforce is off by default

    assert deadline is not None
    assert deadline.action == "tokenbot policy limit (inactive over 60 days): the admins are told, nothing is revoked"


def test_org_inactivity_off_leaves_the_lifetime_rule():
    token = make_token(created_at=at(2026, 1, 1), last_used_on=at(2026, 9, 1))

    deadline = deadline_of(token, DeadlineKind.ORG_POLICY, Policy(org_max_inactive_days=0))

    assert deadline is not None
    assert deadline.due_at == at(2027, 1, 1)


def test_org_lifetime_off_leaves_the_inactivity_rule():
    token = make_token(created_at=at(2025, 12, 1), last_used_on=at(2026, 11, 10))

    deadline = deadline_of(token, DeadlineKind.ORG_POLICY, Policy(org_max_lifetime_days=0))

    assert deadline is not None
    assert deadline.due_at == at(2027, 1, 9)


def test_org_policy_off_when_both_rules_are_zero():
    policy = Policy(org_max_inactive_days=0, org_max_lifetime_days=0)

    assert deadline_of(make_token(), DeadlineKind.ORG_POLICY, policy) is None


# --- exemptions --------------------------------------------------------------------------------------------

ORG_DUE = at(2026, 10, 31)  # last used 2026-09-01 + 60 days


def exempt(kind: DeadlineKind, until: datetime) -> Exemption:
    return Exemption(kind=kind, until=until)


def test_exemption_later_than_the_due_date_moves_it():
    token = make_token(
        last_used_on=at(2026, 9, 1), exemptions=(exempt(DeadlineKind.ORG_POLICY, at(2026, 12, 15)),)
    )

    deadline = deadline_of(token, DeadlineKind.ORG_POLICY)

    assert deadline is not None
    assert deadline.due_at == at(2026, 12, 15)
    assert deadline.reason.endswith("; exempt until 2026-12-15")


def test_latest_of_several_exemptions_counts():
    exemptions = (
        exempt(DeadlineKind.ORG_POLICY, at(2026, 12, 15)),
        exempt(DeadlineKind.ORG_POLICY, at(2027, 1, 5)),
    )
    token = make_token(last_used_on=at(2026, 9, 1), exemptions=exemptions)

    deadline = deadline_of(token, DeadlineKind.ORG_POLICY)

    assert deadline is not None
    assert deadline.due_at == at(2027, 1, 5)


def test_exemption_earlier_than_the_due_date_changes_nothing():
    token = make_token(
        last_used_on=at(2026, 9, 1), exemptions=(exempt(DeadlineKind.ORG_POLICY, at(2026, 10, 20)),)
    )

    deadline = deadline_of(token, DeadlineKind.ORG_POLICY, now=at(2026, 10, 1))

    assert deadline is not None
    assert deadline.due_at == ORG_DUE
    assert "exempt" not in deadline.reason


@pytest.mark.parametrize(
    ("now", "due_at"),
    [(at(2026, 12, 14), at(2026, 12, 15)), (at(2026, 12, 15), ORG_DUE), (at(2026, 12, 16), ORG_DUE)],
    ids=["day before it ends", "day it ends", "day after it ends"],
)
def test_ended_exemption_no_longer_holds_the_rule_off(now, due_at):
    token = make_token(
        last_used_on=at(2026, 9, 1), exemptions=(exempt(DeadlineKind.ORG_POLICY, at(2026, 12, 15)),)
    )

    deadline = deadline_of(token, DeadlineKind.ORG_POLICY, now=now)

    assert deadline is not None
    assert deadline.due_at == due_at


@pytest.mark.parametrize(
    "kind", [DeadlineKind.INACTIVITY_REVOCATION, DeadlineKind.EXPIRY, DeadlineKind.AUTOSCOPE_ENFORCEMENT]
)
def test_exemption_of_another_kind_is_ignored(kind):
    plain = make_token(last_used_on=at(2026, 9, 1), autoscope_state=AUTOSCOPE_RUNNING)
    exempted = dataclasses.replace(plain, exemptions=(exempt(kind, at(2027, 6, 1)),))

    assert evaluate(exempted, Policy(), NOW).deadlines == evaluate(plain, Policy(), NOW).deadlines


# --- the evaluation as a whole -----------------------------------------------------------------------------


def test_deadlines_sorted_by_due_date_with_overdue_ones_kept():
    token = make_token(
        autoscope_state=AUTOSCOPE_RUNNING,
        observation_started_at=at(2026, 10, 20),
        last_used_on=at(2026, 9, 1),
    )

    evaluation = evaluate(token, Policy(), NOW)

    assert [(deadline.kind, deadline.due_at) for deadline in evaluation.deadlines] == [
        (DeadlineKind.ORG_POLICY, at(2026, 10, 31)),
        (DeadlineKind.AUTOSCOPE_ENFORCEMENT, at(2026, 11, 19)),
        (DeadlineKind.INACTIVITY_REVOCATION, at(2026, 11, 30)),
        (DeadlineKind.EXPIRY, at(2026, 12, 30, 9, 30)),
    ]
    assert evaluation.next_deadline == evaluation.deadlines[0]
    assert evaluation.next_deadline.days_left(NOW) == -16


def test_equal_due_dates_keep_the_kind_order():
    token = make_token(created_at=at(2026, 1, 1), expires_at=at(2027, 1, 1), last_used_on=at(2026, 11, 1))

    evaluation = evaluate(token, Policy(org_max_inactive_days=0), NOW)

    assert [deadline.kind for deadline in evaluation.deadlines] == [
        DeadlineKind.EXPIRY,  # 2027-01-01
        DeadlineKind.ORG_POLICY,  # 2027-01-01 too: 365 days after creation
        DeadlineKind.INACTIVITY_REVOCATION,  # 2027-01-30
    ]


def test_no_deadline_at_all():
    policy = Policy(inactivity_revocation_days=0, org_max_inactive_days=0, org_max_lifetime_days=0)

    evaluation = evaluate(make_token(expires_at=None), policy, NOW)

    assert evaluation.deadlines == ()
    assert evaluation.next_deadline is None


def test_due_within_keeps_overdue_and_near_deadlines():
    token = make_token(
        last_used_on=at(2026, 9, 1)
    )  # org 2026-10-31, inactivity 2026-11-30, expiry 2026-12-30

    evaluation = evaluate(token, Policy(), NOW)

    assert [deadline.kind for deadline in evaluation.due_within(NOW, 15)] == [
        DeadlineKind.ORG_POLICY,
        DeadlineKind.INACTIVITY_REVOCATION,
    ]


def test_a_deadline_is_named_by_its_kind_and_day():
    evaluation = evaluate(make_token(), Policy(), NOW)  # expiry 2026-12-30 09:30

    expiry = evaluation.deadline("expiry", date(2026, 12, 30))

    assert expiry is not None and expiry.due_at == at(2026, 12, 30, 9, 30)
    assert evaluation.deadline(DeadlineKind.EXPIRY, at(2026, 12, 30, 23, 59)) == expiry  # any time that day
    assert evaluation.deadline("expiry", date(2026, 12, 29)) is None  # moved, or never was
    assert evaluation.deadline("org_policy", date(2026, 12, 30)) is None  # another kind


def test_evaluate_never_reads_the_clock():
    token = make_token(
        autoscope_state=AUTOSCOPE_RUNNING, exemptions=(exempt(DeadlineKind.ORG_POLICY, at(2027, 1, 1)),)
    )
    expected = evaluate(token, Policy(), NOW)

    with freeze_time("2031-01-01"):
        assert evaluate(token, Policy(), NOW) == expected


def test_now_must_be_aware():
    with pytest.raises(ValueError, match="now must be an aware UTC datetime"):
        evaluate(make_token(), Policy(), datetime(2026, 11, 15, 12))


def test_now_in_another_zone_is_converted():
    paris = timezone(timedelta(hours=1))

    evaluation = evaluate(make_token(), Policy(), NOW.astimezone(paris))

    assert evaluation == evaluate(make_token(), Policy(), NOW)


# --- TokenFacts ------------------------------------------------------------------------------------------


def test_naive_datetime_refused_with_the_field_name():
    with pytest.raises(ValueError, match=r"TokenFacts\.created_at must be an aware UTC datetime"):
        make_token(created_at=datetime(2026, 10, 1))


def test_aware_datetimes_in_another_zone_become_utc():
    token = make_token(expires_at=datetime(2026, 12, 30, 10, 30, tzinfo=timezone(timedelta(hours=1))))

    assert token.expires_at == at(2026, 12, 30, 9, 30)
    assert token.expires_at.tzinfo is UTC


def test_lists_become_tuples():
    token = make_token(scopes=["sql", "jobs"], inferred_scopes=["sql"])

    assert token.scopes == ("sql", "jobs")
    assert token.inferred_scopes == ("sql",)
    assert hash(token)


# --- findings ----------------------------------------------------------------------------------------------

FINDING_CASES = {
    "authentication scope is privileged": (
        make_token(scopes=("authentication", "sql")),
        Finding.PRIVILEGED_SCOPE,
        True,
    ),
    "sql alone is not privileged": (make_token(scopes=("sql",)), Finding.PRIVILEGED_SCOPE, False),
    "all-apis outside observation": (make_token(scopes=("all-apis",)), Finding.ALL_APIS, True),
    "no scopes means full access": (make_token(scopes=()), Finding.ALL_APIS, True),
    "all-apis while observed is expected": (
        make_token(scopes=("all-apis",), autoscope_state=AUTOSCOPE_RUNNING),
        Finding.ALL_APIS,
        False,
    ),
    "all-apis while observed per an event is expected": (
        make_token(scopes=("all-apis",), autoscope_state=None, enforcement_at=at(2026, 12, 1)),
        Finding.ALL_APIS,
        False,
    ),
    "narrow scopes are not full access": (make_token(scopes=("sql", "jobs")), Finding.ALL_APIS, False),
    "never expires": (make_token(expires_at=None), Finding.NO_EXPIRY, True),
    "expires": (make_token(), Finding.NO_EXPIRY, False),
    "lifetime over the workspace maximum": (
        make_token(created_at=at(2026, 1, 1), expires_at=at(2026, 1, 1) + timedelta(days=731)),
        Finding.EXCEEDS_WORKSPACE_MAX,
        True,
    ),
    "lifetime a second over the workspace maximum": (
        make_token(created_at=at(2026, 1, 1), expires_at=at(2026, 1, 1) + timedelta(days=730, seconds=1)),
        Finding.EXCEEDS_WORKSPACE_MAX,
        True,
    ),
    "lifetime exactly the workspace maximum": (
        make_token(created_at=at(2026, 1, 1), expires_at=at(2026, 1, 1) + timedelta(days=730)),
        Finding.EXCEEDS_WORKSPACE_MAX,
        False,
    ),
    "never expiring exceeds a workspace maximum": (
        make_token(expires_at=None),
        Finding.EXCEEDS_WORKSPACE_MAX,
        True,
    ),
    "no workspace maximum known": (
        make_token(expires_at=None, workspace_max_lifetime_days=None),
        Finding.EXCEEDS_WORKSPACE_MAX,
        False,
    ),
    "owner not resolved": (
        make_token(owner_resolved=False, owner_kind=None, owner_active=None),
        Finding.ORPHAN,
        True,
    ),
    "owner resolved": (make_token(), Finding.ORPHAN, False),
    "owner deactivated": (make_token(owner_active=False), Finding.OWNER_INACTIVE, True),
    "owner active": (make_token(owner_active=True), Finding.OWNER_INACTIVE, False),
    "owner activity unknown": (
        make_token(owner_active=None, owner_resolved=False),
        Finding.OWNER_INACTIVE,
        False,
    ),
    "service principal owner": (
        make_token(owner_kind="service_principal"),
        Finding.SERVICE_PRINCIPAL_TOKEN,
        True,
    ),
    "user owner": (make_token(owner_kind="user"), Finding.SERVICE_PRINCIPAL_TOKEN, False),
}


@pytest.mark.parametrize(("token", "code", "expected"), FINDING_CASES.values(), ids=FINDING_CASES)
def test_finding(token, code, expected):
    assert (code in codes(token)) is expected


def test_healthy_token_has_no_findings():
    assert codes(make_token()) == set()


@pytest.mark.parametrize(
    "comment",
    [
        "old token",
        "OLD",
        "Test",
        "my test pat",
        "tmp_pat",
        "token-tmp",
        "(old)",
        "Do not delete!",
        "do  not\tdelete",
    ],
)
def test_junk_comment_matches_whole_words_case_insensitively(comment):
    assert Finding.JUNK_COMMENT in codes(make_token(comment=comment))


@pytest.mark.parametrize(
    "comment", ["golden", "latest export", "contest", "temporal", "nightly ETL", "do delete"]
)
def test_words_containing_a_junk_word_are_not_junk(comment):
    assert Finding.JUNK_COMMENT not in codes(make_token(comment=comment))


@pytest.mark.parametrize("comment", ["", "   "])
def test_missing_comment_is_junk(comment):
    findings = evaluate(make_token(comment=comment), Policy(), NOW).findings

    assert [(finding.code, finding.detail) for finding in findings] == [(Finding.JUNK_COMMENT, "no comment")]


def test_junk_detail_quotes_the_comment_and_the_match():
    (finding,) = evaluate(make_token(comment="OLD token"), Policy(), NOW).findings

    assert finding.detail == 'comment "OLD token" looks like a placeholder ("OLD")'


def test_junk_patterns_come_from_the_policy():
    policy = Policy(junk_comment_patterns=("scratch",))

    assert Finding.JUNK_COMMENT in codes(make_token(comment="Scratch"), policy)
    assert Finding.JUNK_COMMENT not in codes(make_token(comment="old token"), policy)


def test_no_junk_patterns_flags_only_missing_comments():
    policy = Policy(junk_comment_patterns=())

    assert Finding.JUNK_COMMENT not in codes(make_token(comment="old"), policy)
    assert Finding.JUNK_COMMENT in codes(make_token(comment=""), policy)


def test_rare_scope_missing_from_inferred_scopes_is_a_finding():
    token = make_token(inferred_scopes=("sql",))

    evaluation = evaluate(
        token, Policy(), NOW, rare_scopes={"sql": date(2026, 2, 1), "jobs": date(2026, 3, 1)}
    )

    assert [(finding.code, finding.detail) for finding in evaluation.findings] == [
        (Finding.RARE_API, "jobs (last used 2026-03-01) is not among the inferred scopes")
    ]


def test_rare_scopes_are_listed_by_name():
    evaluation = evaluate(
        make_token(inferred_scopes=()),
        Policy(),
        NOW,
        rare_scopes={"secrets": at(2026, 4, 1, 13), "jobs": date(2026, 3, 1)},
    )

    assert [finding.detail for finding in evaluation.findings] == [
        "jobs (last used 2026-03-01) is not among the inferred scopes",
        "secrets (last used 2026-04-01) is not among the inferred scopes",
    ]


def test_no_rare_api_finding_without_usage_data():
    assert Finding.RARE_API not in codes(make_token(inferred_scopes=()))


def test_finding_details_give_the_numbers():
    token = make_token(created_at=at(2026, 1, 1), expires_at=at(2026, 1, 1) + timedelta(days=730, seconds=1))

    (finding,) = evaluate(token, Policy(), NOW).findings

    assert finding.detail == "lifetime of 731 days; the workspace allows at most 730"


def test_findings_come_worst_first():
    token = make_token(
        scopes=("authentication", "all-apis"),
        owner_kind="service_principal",
        owner_active=False,
        owner_resolved=False,
        expires_at=None,
        comment="",
    )

    uncovered = DeniedCall(
        "webTerminal", "open", 2, None, at(2026, 3, 1, 9), False, Verdict.NOT_COVERED, None
    )
    evaluation = evaluate(token, Policy(), NOW, rare_scopes={"jobs": date(2026, 3, 1)}, denied=[uncovered])

    assert evaluation.finding_codes == tuple(sorted(Finding, key=FINDING_SEVERITY.__getitem__))
    assert evaluation.finding_codes[0] == Finding.PRIVILEGED_SCOPE


def test_every_code_has_a_label_and_a_rank():
    assert set(FINDING_LABELS) == set(Finding) == set(FINDING_SEVERITY)
    assert sorted(FINDING_SEVERITY.values()) == list(range(len(Finding)))
    assert FINDING_SEVERITY[Finding.PRIVILEGED_SCOPE] == 0
    assert set(DEADLINE_LABELS) == set(DeadlineKind)
    assert all(FINDING_LABELS.values()) and all(DEADLINE_LABELS.values())


def test_codes_are_the_report_contract():
    assert [kind.value for kind in DeadlineKind] == [
        "autoscope_enforcement",
        "expiry",
        "inactivity_revocation",
        "org_policy",
    ]
    assert {code.value for code in Finding} >= {
        "privileged_scope",
        "no_expiry",
        "junk_comment",
        "orphan",
        "owner_inactive",
        "rare_api",
    }


# --- policy ------------------------------------------------------------------------------------------------


def test_policy_defaults():
    policy = Policy()

    assert policy.reminder_days == (14, 7, 3, 1)
    assert (
        policy.inactivity_revocation_days,
        policy.org_max_inactive_days,
        policy.org_max_lifetime_days,
    ) == (
        90,
        60,
        365,
    )
    assert policy.enforce is False
    assert policy.autoscope_rollout_date is None
    assert policy.quiet_window() == (time(18, 0), time(9, 0))


def test_policy_is_frozen():
    policy = Policy()

    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.org_max_inactive_days = 10  # type: ignore[misc]


def test_policy_from_a_toml_table_keeps_tuples():
    values = {"reminder_days": [10, 5, 1], "junk_comment_patterns": ["test", "tmp"], "enforce": True}

    policy = Policy(**values)

    assert policy.reminder_days == (10, 5, 1)
    assert policy.junk_comment_patterns == ("test", "tmp")
    assert hash(policy) == hash(Policy(**values))


@pytest.mark.parametrize(
    ("text", "window"),
    [
        ("18:00-09:00", (time(18, 0), time(9, 0))),
        ("9:30-17:00", (time(9, 30), time(17, 0))),
        (" 22:15 - 06:45 ", (time(22, 15), time(6, 45))),
        ("00:00-23:59", (time(0, 0), time(23, 59))),
        ("", None),
        ("off", None),
        ("OFF", None),
    ],
)
def test_parse_quiet_hours(text, window):
    assert parse_quiet_hours(text) == window


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("18-09", "HH:MM-HH:MM"),
        ("18:00", "HH:MM-HH:MM"),
        ("evenings", "HH:MM-HH:MM"),
        ("18:00-09:00-10:00", "HH:MM-HH:MM"),
        ("24:00-09:00", "00 to 23"),
        ("18:60-09:00", "00 to 59"),
        ("18:00-18:00", 'write "off"'),
        (None, "18:00-09:00"),
    ],
)
def test_parse_quiet_hours_refuses_bad_text_and_says_what_to_write(text, message):
    with pytest.raises(ValueError, match=message):
        parse_quiet_hours(text)  # type: ignore[arg-type]


def test_policy_quiet_window_off():
    assert Policy(quiet_hours="off").quiet_window() is None


# --- purity ------------------------------------------------------------------------------------------------


def test_domain_imports_only_the_standard_library():
    domain = Path(__file__).resolve().parents[2] / "bot" / "domain"
    imported: set[str] = set()
    for source in domain.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module)

    foreign = {
        name
        for name in imported
        if name.split(".")[0] not in sys.stdlib_module_names and name != "__future__"
    }
    assert {name for name in foreign if not name.startswith("bot.domain")} == set()


# --- property: any valid token can be evaluated ---------------------------------------------------------

utc_times = st.datetimes(timezones=st.just(UTC))
optional_utc_times = st.none() | utc_times
scope_names = st.sampled_from(["all-apis", "authentication", "sql", "jobs", "secrets", "made-up"])
states = st.none() | st.sampled_from(sorted(KNOWN_AUTOSCOPE_STATES)) | st.text(max_size=30)

token_facts = st.builds(
    TokenFacts,
    workspace=st.text(max_size=10),
    token_id=st.text(max_size=10),
    owner_kind=st.sampled_from([None, "user", "service_principal"]),
    owner_active=st.none() | st.booleans(),
    owner_resolved=st.booleans(),
    comment=st.text(max_size=80),
    created_at=utc_times,
    expires_at=optional_utc_times,
    last_used_on=optional_utc_times,
    scopes=st.lists(scope_names, max_size=4).map(tuple),
    inferred_scopes=st.lists(scope_names, max_size=4).map(tuple),
    autoscope_state=states,
    observation_started_at=optional_utc_times,
    enforcement_at=optional_utc_times,
    workspace_max_lifetime_days=st.none() | st.integers(min_value=0, max_value=10_000),
    exemptions=st.lists(
        st.builds(Exemption, kind=st.sampled_from(DeadlineKind), until=utc_times), max_size=3
    ).map(tuple),
)
day_counts = st.integers(min_value=0, max_value=100_000)
policies = st.builds(
    Policy,
    autoscope_observation_days=day_counts,
    inactivity_revocation_days=day_counts,
    org_max_inactive_days=day_counts,
    org_max_lifetime_days=day_counts,
    junk_comment_patterns=st.lists(st.text(min_size=0, max_size=12), max_size=4).map(tuple),
    autoscope_rollout_date=st.none() | st.dates(),
)


@settings(max_examples=300, deadline=None)
@given(
    token=token_facts,
    policy=policies,
    now=utc_times,
    rare_scopes=st.dictionaries(scope_names, st.dates(), max_size=3),
)
def test_evaluate_never_raises_and_sorts_deadlines(token, policy, now, rare_scopes):
    evaluation = evaluate(token, policy, now, rare_scopes)

    due_dates = [deadline.due_at for deadline in evaluation.deadlines]
    assert due_dates == sorted(due_dates)
    assert all(due_at.tzinfo is UTC for due_at in due_dates)
    assert len({deadline.kind for deadline in evaluation.deadlines}) == len(evaluation.deadlines)
    ranks = [FINDING_SEVERITY[finding.code] for finding in evaluation.findings]
    assert ranks == sorted(ranks)
