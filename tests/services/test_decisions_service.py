"""The decisions service against a real (sandbox) workspace through the real databricks-sdk, on
both databases: every row of DESIGN.md section 4, who may decide, idempotency under concurrency,
Databricks failures, dry run, and where a rotated token's value may go (only the secret)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot import clock, db
from bot.domain.deadlines import DeadlineKind
from bot.domain.tokens import AUTOSCOPE_USER_SELECTED
from bot.models import Exemption
from bot.services import decisions
from tests.support.decisions_helpers import (
    ADMIN,
    ADMIN2,
    ALICE,
    ALICE_ID,
    BOB,
    COMPLETED,
    ETL_ID,
    OPS,
    RUNNING,
    SECRET_KEY,
    SECRET_SCOPE,
    deletes_of,
    extend,
    make_world,
    mutations,
)

ALICE_TOKEN = "t-alice"


@pytest.fixture
def world(tmp_path, monkeypatch, database_url):
    with make_world(tmp_path, monkeypatch, database_url) as world:
        yield world


def revoke(world, actor, token_id=ALICE_TOKEN, **extra):
    return world.decide(decisions.revoke, actor=actor, token_pk=world.pk(token_id), reason="cleanup", **extra)


# =============================================================================================
# revoke


def test_the_owner_revokes_their_token(world):
    outcome = revoke(world, ALICE)

    assert outcome.status == "applied"
    assert outcome.message == "Revoked token t-alice (notebooks) in prod."
    assert [r.path for r in deletes_of(world.prod, "t-alice")] == ["/api/2.0/token-management/tokens/t-alice"]
    assert "t-alice" not in {t["token_id"] for t in world.prod.tokens()}
    [row] = world.decisions()
    assert (row.id, row.action, row.status, row.actor_slack_id, row.actor_role) == (
        outcome.decision_id,
        "revoke",
        "applied",
        "UALICE",
        "owner",
    )
    assert row.parameters["reason"] == "cleanup" and row.idempotency_key == f"revoke:{world.pk('t-alice')}"
    token = world.token("t-alice")
    assert token.gone_at is not None and token.gone_reason == "revoked"


def test_an_admin_revokes_anyones_token(world):
    outcome = revoke(world, ADMIN, "t-etl")

    assert outcome.status == "applied" and len(deletes_of(world.prod, "t-etl")) == 1
    assert world.decisions()[0].actor_role == "admin"


def test_the_admin_assigned_owner_of_a_service_principal_may_decide(world):
    assert revoke(world, OPS, "t-etl").status == "applied"


STRANGER_ATTEMPTS = {
    "revoke": lambda w: w.decide(decisions.revoke, actor=BOB, token_pk=w.pk("t-alice")),
    "confirm_scopes": lambda w: w.decide(
        decisions.confirm_scopes, actor=BOB, token_pk=w.pk("t-alice"), scopes=["sql"]
    ),
    "accept": lambda w: w.decide(
        decisions.accept,
        actor=BOB,
        token_pk=w.pk("t-alice"),
        deadline=w.deadline("t-alice", DeadlineKind.AUTOSCOPE_ENFORCEMENT),
    ),
    "extend": lambda w: w.decide(
        decisions.extend,
        actor=BOB,
        token_pk=w.pk("t-etl"),
        deadline=w.deadline("t-etl", DeadlineKind.EXPIRY),
        days=10,
        reason="",
        policy=w.settings.policy,
        secret_bindings=w.settings.secret_bindings,
    ),
    "assign_owner": lambda w: w.decide(
        decisions.assign_owner, actor=ALICE, token_pk=w.pk("t-alice"), owner_slack_id="UBOB"
    ),
}


@pytest.mark.parametrize("attempt", STRANGER_ATTEMPTS)
def test_someone_who_is_not_the_owner_is_refused_and_nothing_is_called(world, attempt):
    before = len(world.prod.requests)

    outcome = STRANGER_ATTEMPTS[attempt](world)

    assert outcome.status == "refused"
    assert "Only" in outcome.message and "admin can do that" in outcome.message
    assert [r for r in world.prod.requests[before:] if r.method != "GET"] == []
    [row] = world.decisions()
    assert (row.action, row.status, row.actor_role) == (
        attempt,
        "refused",
        "owner" if attempt == "assign_owner" else "other",
    )
    assert row.parameters["refused"] in ("not_owner", "not_admin")


def test_an_unknown_token_is_refused(world):
    outcome = world.decide(decisions.revoke, actor=ADMIN, token_pk=999999)

    assert outcome.status == "refused" and "does not know this token" in outcome.message
    [row] = world.decisions()
    assert row.token_pk is None and row.parameters["token_pk"] == 999999
    assert mutations(world.prod) == []


def test_a_token_databricks_already_revoked_is_reported_gone_not_failed(world):
    world.prod.revoke_token("t-alice")

    outcome = revoke(world, ALICE)

    assert outcome.status == "applied" and outcome.already_gone
    assert "is revoked: Databricks no longer has it (revoked earlier by Databricks or someone else" in outcome.message
    assert len(deletes_of(world.prod, "t-alice")) == 1  # answered 404
    assert world.token("t-alice").gone_reason == "revoked"


def test_a_token_the_database_knows_is_gone_is_reported_without_a_call(world):
    world.prod.revoke_token("t-alice")
    world.sync()

    outcome = revoke(world, ALICE)

    assert outcome.status == "applied" and outcome.already_gone
    assert deletes_of(world.prod, "t-alice") == []


def test_a_double_click_revokes_once(world):
    first = revoke(world, ALICE)
    second = revoke(world, ALICE)

    assert first.status == "applied"
    assert second.status == "refused" and second.duplicate_of == first.decision_id
    assert second.message.startswith("Token t-alice (notebooks) in prod was already revoked by <@UALICE> on ")
    assert len(deletes_of(world.prod, "t-alice")) == 1
    assert [d.status for d in world.decisions()] == ["applied", "refused"]


def test_twenty_parallel_clicks_make_one_delete(world):
    pk = world.pk("t-alice")

    outcomes = world.at_once(
        [lambda: world.decide(decisions.revoke, actor=ALICE, token_pk=pk) for _ in range(20)]
    )

    assert all(isinstance(o, decisions.Outcome) for o in outcomes), outcomes
    assert sorted(o.status for o in outcomes) == ["applied"] + ["refused"] * 19
    assert len(deletes_of(world.prod, "t-alice")) == 1
    rows = world.decisions()
    assert len(rows) == 20 and [r.status for r in rows].count("applied") == 1
    assert {r.parameters["refused"] for r in rows if r.status == "refused"} == {"duplicate"}


def test_two_admins_at_once_make_one_delete_and_the_second_learns_who(world):
    pk = world.pk("t-etl")

    outcomes = world.at_once(
        [lambda a=actor: world.decide(decisions.revoke, actor=a, token_pk=pk) for actor in (ADMIN, ADMIN2)]
    )

    applied = [o for o in outcomes if o.status == "applied"]
    [refused] = [o for o in outcomes if o.status == "refused"]
    assert len(applied) == 1 and len(deletes_of(world.prod, "t-etl")) == 1
    # Naming who: after the revoke, or while its DELETE is under way.
    who = f"<@{applied[0].actor_slack_id}>"
    assert f"already revoked by {who}" in refused.message or f"{who} is already deciding" in refused.message


def test_a_503_is_retried_by_the_sdk_and_the_revoke_applies(world):
    world.prod.fail("DELETE", r"/token-management/tokens/t-alice$", 503, times=1, retry_after=0)

    outcome = revoke(world, ALICE)

    assert outcome.status == "applied"
    assert [r.path for r in deletes_of(world.prod, "t-alice")] == [
        "/api/2.0/token-management/tokens/t-alice"
    ] * 2


def test_a_revoke_that_keeps_failing_is_failed_and_retry_succeeds(tmp_path, monkeypatch, database_url):
    with make_world(tmp_path, monkeypatch, database_url, retry_timeout_seconds=1) as world:
        world.prod.fail("DELETE", r"/tokens/t-alice$", 503, times=1000, retry_after=0)

        failed = revoke(world, ALICE)

        assert failed.status == "failed" and failed.retryable
        assert "Databricks is overloaded or unavailable" in failed.message
        assert failed.message.endswith("Nothing was changed; you can try again.")
        assert world.token("t-alice").gone_at is None
        world.prod.clear_faults()

        retried = revoke(world, ALICE)

        assert retried.status == "applied"
        assert "t-alice" not in {t["token_id"] for t in world.prod.tokens()}
        assert [(d.status, d.error is not None) for d in world.decisions()] == [
            ("failed", True),
            ("applied", False),
        ]


def test_a_403_is_a_failed_decision_with_a_clear_message(world):
    world.prod.fail("DELETE", r"/tokens/t-alice$", 403)

    outcome = revoke(world, ALICE)

    assert outcome.status == "failed"
    assert "permission denied" in outcome.message and "must be a workspace admin" in outcome.message
    [row] = world.decisions()
    assert (
        row.status == "failed"
        and "permission denied" in row.error
        and row.idempotency_key.endswith(f":failed:{row.id}")
    )
    assert world.token("t-alice").gone_at is None


def test_a_token_listed_again_after_a_revoke_can_be_revoked_again(world):
    assert revoke(world, ALICE).status == "applied"
    world.prod.add_token(token_id=ALICE_TOKEN, owner_id=ALICE_ID, comment="notebooks")
    world.sync()

    again = revoke(world, ALICE)

    assert again.status == "applied" and len(deletes_of(world.prod, "t-alice")) == 2


# =============================================================================================
# dry run


def test_dry_run_records_applied_decisions_and_changes_nothing_in_databricks(world):
    alice, etl = world.pk("t-alice"), world.pk("t-etl")

    outcomes = [
        world.decide(decisions.revoke, actor=ALICE, token_pk=alice, dry_run=True),
        world.decide(decisions.confirm_scopes, actor=ALICE, token_pk=alice, scopes=["sql"], dry_run=True),
        world.decide(
            decisions.extend,
            actor=OPS,
            token_pk=etl,
            deadline=world.deadline("t-etl", DeadlineKind.EXPIRY),
            days=1,
            reason="",
            policy=world.settings.policy,
            secret_bindings=world.settings.secret_bindings,
            dry_run=True,
        ),
    ]

    assert [(o.action, o.status, o.dry_run) for o in outcomes] == [
        ("revoke", "applied", True),
        ("confirm_scopes", "applied", True),
        ("rotate", "applied", True),
    ]
    assert all(o.message.startswith("Dry run: ") for o in outcomes)
    assert mutations(world.prod) == []
    assert len(world.prod.tokens()) == 2 and world.prod.secrets() == {}
    token = world.token("t-alice")
    assert token.gone_at is None and token.scopes == ["all-apis"]
    assert "revoke_old_after" not in outcomes[2].parameters
    assert (
        world.decide(decisions.complete_rotations, now=clock.now() + timedelta(days=30), dry_run=False) == []
    )


def test_a_dry_run_revoke_does_not_block_the_real_one_later(world):
    world.decide(decisions.revoke, actor=ALICE, token_pk=world.pk("t-alice"), dry_run=True)

    assert revoke(world, ALICE).status == "applied"


# =============================================================================================
# confirm scopes, approvals, restore


def confirm(world, actor, scopes, token_id=ALICE_TOKEN):
    return world.decide(decisions.confirm_scopes, actor=actor, token_pk=world.pk(token_id), scopes=scopes)


def patches(world, token_id=ALICE_TOKEN):
    return [
        r.json for r in world.prod.requests if r.method == "PATCH" and r.path.endswith(f"/tokens/{token_id}")
    ]


def test_the_owner_confirms_scopes_with_one_patch(world):
    outcome = confirm(world, ALICE, ["sql", "jobs"])

    assert outcome.status == "applied"
    assert patches(world) == [{"token": {"scopes": ["jobs", "sql"]}, "update_mask": "scopes"}]
    assert "end auto-scoping for this token" in outcome.message and "up to 10 minutes" in outcome.message
    token = world.token("t-alice")
    assert token.scopes == ["jobs", "sql"] and token.autoscope_state == AUTOSCOPE_USER_SELECTED
    [row] = world.decisions()
    assert row.parameters["before"] == ["all-apis"] and row.parameters["after"] == ["jobs", "sql"]
    [info] = [t for t in world.prod.tokens() if t["token_id"] == "t-alice"]
    assert info["scopes"] == ["jobs", "sql"] and info["autoscope_state"] == AUTOSCOPE_USER_SELECTED


def test_confirming_the_same_scopes_twice_patches_once(world):
    confirm(world, ALICE, ["sql"])
    second = confirm(world, ALICE, ["sql"])

    assert second.status == "refused" and second.parameters["refused"] == "no_change"
    assert len(patches(world)) == 1


@pytest.mark.parametrize(
    ("scopes", "expected"),
    [
        ([], "Choose at least one scope."),
        (["sql", "jobz", "everything"], "Unknown scopes: everything, jobz. Choose from the list."),
    ],
)
def test_empty_or_unknown_scopes_are_refused_naming_them(world, scopes, expected):
    outcome = confirm(world, ALICE, scopes)

    assert outcome.status == "refused" and outcome.message == expected
    assert patches(world) == []


def test_privileged_scopes_wait_for_an_admin_then_two_admins_approving_patch_once(world):
    request = confirm(world, ALICE, ["sql", "authentication"])

    assert request.status == "requested" and "authentication (can create new tokens)" in request.message
    assert patches(world) == []
    assert confirm(world, ALICE, ["all-apis"]).parameters["refused"] == "duplicate"  # one open request

    outcomes = world.at_once(
        [
            lambda a=admin: world.decide(decisions.approve, actor=a, decision_id=request.decision_id)
            for admin in (ADMIN, ADMIN2)
        ]
    )

    assert all(isinstance(o, decisions.Outcome) for o in outcomes), outcomes
    [applied] = [o for o in outcomes if o.status == "applied"]
    [late] = [o for o in outcomes if o.status == "refused"]
    # Refused naming the admin who did it: after the approval, or while its PATCH is under way.
    assert "already approved by" in late.message or "is already deciding" in late.message
    assert f"<@{applied.actor_slack_id}>" in late.message
    assert patches(world) == [{"token": {"scopes": ["authentication", "sql"]}, "update_mask": "scopes"}]
    assert applied.parameters["request_id"] == request.decision_id
    assert applied.parameters["requested_by"] == "UALICE"
    rows = {r.id: r for r in world.decisions()}
    assert rows[request.decision_id].status == "approved"
    assert rows[request.decision_id].approved_by == applied.actor_slack_id
    assert rows[applied.decision_id].approved_by == applied.actor_slack_id
    assert world.token("t-alice").scopes == ["authentication", "sql"]


def test_only_an_admin_approves(world):
    request = confirm(world, ALICE, ["all-apis"])

    outcome = world.decide(decisions.approve, actor=ALICE, decision_id=request.decision_id)

    assert outcome.status == "refused" and outcome.message == "Only an admin can approve or deny requests."
    assert patches(world) == []


def test_a_denied_request_changes_nothing_and_the_owner_may_ask_for_something_else(world):
    request = confirm(world, ALICE, ["all-apis"])

    denied = world.decide(decisions.deny, actor=ADMIN, decision_id=request.decision_id, reason="too broad")

    assert (
        denied.status == "denied"
        and denied.message == "Denied <@UALICE>'s request about token t-alice (notebooks) in prod."
    )
    assert patches(world) == []
    assert world.decisions(id=request.decision_id)[0].status == "denied"
    assert confirm(world, ALICE, ["all-apis"]).parameters["refused"] == "denied_before"  # not the same again
    assert confirm(world, ALICE, ["authentication", "sql"]).status == "requested"


def test_an_admin_sets_privileged_scopes_directly(world):
    assert confirm(world, ADMIN, ["all-apis"]).status == "applied"
    assert len(patches(world)) == 1


def narrow(world):
    """Auto-scoping enforced on Alice's token: all-apis narrowed to sql."""
    world.prod.set_autoscope("t-alice", COMPLETED, scopes=["sql"])
    world.sync()


def test_restore_adds_the_chosen_scopes_to_a_narrowed_token(world):
    narrow(world)

    outcome = world.decide(
        decisions.restore_scopes, actor=ALICE, token_pk=world.pk("t-alice"), scopes=["jobs"]
    )

    assert outcome.status == "applied" and outcome.action == "restore"
    assert patches(world) == [{"token": {"scopes": ["jobs", "sql"]}, "update_mask": "scopes"}]
    [row] = world.decisions()
    assert row.parameters["before"] == ["sql"] and row.parameters["after"] == ["jobs", "sql"]
    assert row.parameters["previous_scopes"] == ["all-apis"]


def test_restoring_a_privileged_scope_waits_for_an_admin(world):
    narrow(world)
    pk = world.pk("t-alice")

    request = world.decide(decisions.restore_scopes, actor=ALICE, token_pk=pk, scopes=["all-apis"])
    assert request.status == "requested" and patches(world) == []

    approved = world.decide(decisions.approve, actor=ADMIN, decision_id=request.decision_id)

    assert approved.status == "applied" and approved.action == "restore"
    assert patches(world) == [{"token": {"scopes": ["all-apis", "sql"]}, "update_mask": "scopes"}]


def test_restore_is_only_for_narrowed_tokens(world):
    outcome = world.decide(
        decisions.restore_scopes, actor=ALICE, token_pk=world.pk("t-alice"), scopes=["jobs"]
    )

    assert outcome.status == "refused" and "use Confirm scopes instead" in outcome.message


# =============================================================================================
# accept, snooze


def test_accept_stops_the_reminders_for_that_deadline_only(world):
    deadline = world.deadline("t-alice", DeadlineKind.AUTOSCOPE_ENFORCEMENT)
    pk = world.pk("t-alice")

    outcome = world.decide(decisions.accept, actor=ALICE, token_pk=pk, deadline=deadline)
    again = world.decide(decisions.accept, actor=ALICE, token_pk=pk, deadline=deadline)

    assert (
        outcome.status == "applied"
        and "narrows token t-alice (notebooks) in prod to scopes sql, jobs" in outcome.message
    )
    assert outcome.parameters["deadline_kind"] == "autoscope_enforcement"
    assert outcome.parameters["due_date"] == deadline.due_date.isoformat()
    assert again.status == "refused" and again.duplicate_of == outcome.decision_id
    assert mutations(world.prod) == []
    with db.session_scope(world.engine) as session:

        def stops(kind, due):
            return decisions.stops_reminders(
                session=session, token_pk=pk, deadline_kind=kind, due_date=due, now=clock.now()
            )

        assert stops("autoscope_enforcement", deadline.due_date)
        assert not stops("autoscope_enforcement", deadline.due_date + timedelta(days=1))
        assert not stops("expiry", deadline.due_date)


def test_snooze_until_tomorrow_capped_by_the_deadline(world):
    pk, etl = world.pk("t-alice"), world.pk("t-etl")
    soon = decisions.DeadlineRef(kind="expiry", due_at=clock.now() + timedelta(hours=5))
    later = world.deadline("t-alice", DeadlineKind.EXPIRY)

    tomorrow = world.decide(decisions.snooze, actor=ALICE, token_pk=pk, deadline=later)
    capped = world.decide(decisions.snooze, actor=OPS, token_pk=etl, deadline=soon)

    assert tomorrow.status == "applied" and "comes tomorrow" in tomorrow.message
    assert capped.status == "applied" and "when it is due" in capped.message
    with db.session_scope(world.engine) as session:
        until = decisions.snoozed_until(
            session=session, token_pk=pk, deadline_kind="expiry", due_date=later.due_date
        )
        capped_until = decisions.snoozed_until(
            session=session, token_pk=etl, deadline_kind="expiry", due_date=soon.due_date
        )
    assert timedelta(hours=23) < until - clock.now() <= timedelta(days=1)
    assert capped_until == soon.due_at


# =============================================================================================
# extend


def exemptions(world):
    with db.session_scope(world.engine) as session:
        return session.execute(select(Exemption)).scalars().all()


def test_extend_within_the_limit_creates_an_exemption(world):
    deadline = world.deadline("t-alice", DeadlineKind.ORG_POLICY)

    outcome = extend(world, ALICE, "t-alice", DeadlineKind.ORG_POLICY, days=30)

    assert outcome.status == "applied" and outcome.message.startswith("Extended: tokenbot's policy leaves")
    [exemption] = exemptions(world)
    assert exemption.until == deadline.due_at + timedelta(days=30)
    assert (exemption.requested_by, exemption.approved_by, exemption.reason) == (
        "UALICE",
        "UALICE",
        "quarter close",
    )
    later = world.deadline("t-alice", DeadlineKind.ORG_POLICY)
    assert later.due_at == exemption.until  # the policy deadline moved
    assert (
        extend(world, ALICE, "t-alice", DeadlineKind.ORG_POLICY, days=30).status == "applied"
    )  # a new due date


def test_extend_beyond_the_limit_waits_for_an_admin(world):
    request = extend(world, ALICE, "t-alice", DeadlineKind.ORG_POLICY, days=90)

    assert request.status == "requested" and "more than 30 days needs an admin's approval" in request.message
    assert exemptions(world) == []

    approved = world.decide(decisions.approve, actor=ADMIN, decision_id=request.decision_id)

    assert approved.status == "applied"
    [exemption] = exemptions(world)
    assert (exemption.requested_by, exemption.approved_by) == ("UALICE", "UADMIN1")


def test_an_admin_extends_beyond_the_limit_directly(world):
    assert extend(world, ADMIN, "t-alice", DeadlineKind.ORG_POLICY, days=200).status == "applied"


@pytest.mark.parametrize("days", [0, -3, 366])
def test_extend_outside_the_allowed_range_is_refused(world, days):
    outcome = extend(world, ADMIN, "t-alice", DeadlineKind.ORG_POLICY, days=days)

    assert outcome.status == "refused"
    assert outcome.message == "Choose between 1 and 365 days (up to 30 without an admin's approval)."
    assert exemptions(world) == []


@pytest.mark.parametrize(
    ("token_id", "kind", "expected"),
    [
        ("t-alice", DeadlineKind.EXPIRY, "move to OAuth machine-to-machine"),
        (
            "t-alice",
            DeadlineKind.INACTIVITY_REVOCATION,
            "Using token t-alice (notebooks) in prod once (any API call)",
        ),
        ("t-alice", DeadlineKind.AUTOSCOPE_ENFORCEMENT, "cannot be postponed"),
    ],
)
def test_extend_explains_what_no_api_can_lengthen(world, token_id, kind, expected):
    outcome = extend(world, ALICE, token_id, kind)

    assert outcome.status == "refused" and outcome.parameters["refused"] == "not_extendable"
    assert expected in outcome.message
    assert mutations(world.prod) == [] and exemptions(world) == []


def test_a_service_principal_token_without_a_binding_gets_the_explanation(world):
    outcome = extend(world, OPS, "t-etl", DeadlineKind.EXPIRY, secret_bindings=())

    assert outcome.parameters["refused"] == "not_extendable"
    assert "bind this service principal to a secret" in outcome.message


def test_rotation_puts_the_new_value_only_into_the_bound_secret(world, caplog):
    caplog.set_level(logging.DEBUG)

    outcome = extend(world, OPS, "t-etl", DeadlineKind.EXPIRY)

    assert outcome.status == "applied" and outcome.action == "rotate"
    value = world.prod.secrets()[(SECRET_SCOPE, SECRET_KEY)]
    new_id = outcome.parameters["new_token_id"]
    [created] = mutations(world.prod, "/on-behalf-of/tokens")
    assert created.json["application_id"] == "app-etl"
    assert created.json["comment"] == f"nightly etl [tokenbot rotation {outcome.decision_id}]"
    assert created.json["scopes"] == ["sql", "jobs"] and created.json["lifetime_seconds"] == 90 * 86400
    [new] = [t for t in world.prod.tokens() if t["token_id"] == new_id]
    assert new["owner_id"] == int(ETL_ID)
    assert "t-etl" in {t["token_id"] for t in world.prod.tokens()}  # the old one lives until the grace ends
    revoke_after = datetime.fromisoformat(outcome.parameters["revoke_old_after"])
    assert timedelta(hours=23) < revoke_after - clock.now() <= timedelta(hours=24)
    # The value went nowhere else: not the database, not a log record, not the outcome.
    assert value.startswith("dapi") and value not in world.stored_text()
    assert all(value not in record.getMessage() for record in caplog.records)
    assert value not in caplog.text
    assert value not in repr(outcome)
    assert extend(world, OPS, "t-etl", DeadlineKind.EXPIRY).parameters["refused"] == "duplicate"
    assert len(mutations(world.prod, "/on-behalf-of/tokens")) == 1


def test_the_old_token_is_revoked_once_after_the_grace_period(world):
    rotation = extend(world, OPS, "t-etl", DeadlineKind.EXPIRY)
    grace_end = datetime.fromisoformat(rotation.parameters["revoke_old_after"])

    early = world.decide(decisions.complete_rotations, now=grace_end - timedelta(minutes=1))
    done = world.decide(decisions.complete_rotations, now=grace_end)
    again = world.decide(decisions.complete_rotations, now=grace_end + timedelta(hours=1))

    assert early == [] and again == []
    [outcome] = done
    assert outcome.status == "applied" and outcome.actor_slack_id == "tokenbot"
    assert outcome.parameters["reason"] == f"rotated: replaced by {rotation.parameters['new_token_id']}"
    assert len(deletes_of(world.prod, "t-etl")) == 1
    assert {t["token_id"] for t in world.prod.tokens()} == {"t-alice", rotation.parameters["new_token_id"]}
    assert world.decisions(id=outcome.decision_id)[0].actor_role == "tokenbot"


def test_a_failed_secret_write_revokes_the_new_token_and_changes_nothing(world):
    world.prod.fail("POST", r"/secrets/put$", 403)

    outcome = extend(world, OPS, "t-etl", DeadlineKind.EXPIRY)

    assert outcome.status == "failed" and "permission denied" in outcome.message
    assert outcome.message.endswith("The new token was revoked again; nothing was changed.")
    new_id = outcome.parameters["new_token_id"]
    assert len(deletes_of(world.prod, new_id)) == 1
    assert {t["token_id"] for t in world.prod.tokens()} == {"t-alice", "t-etl"}
    assert world.prod.secrets() == {}
    assert "revoke_old_after" not in outcome.parameters
    assert world.decide(decisions.complete_rotations, now=clock.now() + timedelta(days=2)) == []
    world.prod.clear_faults()
    assert extend(world, OPS, "t-etl", DeadlineKind.EXPIRY).status == "applied"  # Retry


# =============================================================================================
# not mine, owners


def test_not_mine_goes_to_the_admins_whose_pick_becomes_the_owner(world):
    pk = world.pk("t-alice")

    request = world.decide(decisions.not_mine, actor=ALICE, token_pk=pk, note="I never made this")
    repeated = world.decide(decisions.not_mine, actor=ALICE, token_pk=pk)
    assigned = world.decide(decisions.assign_owner, actor=ADMIN, token_pk=pk, owner_slack_id="UCAROL")

    assert request.status == "requested" and repeated.parameters["refused"] == "duplicate"
    assert (
        assigned.status == "applied"
        and assigned.message == "<@UCAROL> now owns token t-alice (notebooks) in prod."
    )
    assert world.principal(ALICE_ID).owner_slack_id == "UCAROL"
    resolved = world.decisions(id=request.decision_id)[0]
    assert (resolved.status, resolved.approved_by) == ("approved", "UADMIN1")
    carol = decisions.Actor("UCAROL")
    assert world.decide(decisions.revoke, actor=carol, token_pk=pk).status == "applied"


def test_assigning_an_owner_checks_the_slack_id(world):
    outcome = world.decide(
        decisions.assign_owner, actor=ADMIN, token_pk=world.pk("t-etl"), owner_slack_id="carol"
    )

    assert outcome.status == "refused" and "is not a Slack user id" in outcome.message
    assert world.principal(ETL_ID).owner_slack_id == "UOPS"


def test_decisions_on_a_gone_token_are_refused(world):
    world.prod.revoke_token("t-alice")
    world.sync()

    outcome = confirm(world, ALICE, ["sql"])

    assert outcome.status == "refused" and outcome.parameters["refused"] == "token_gone"
    assert patches(world) == []


# =============================================================================================
# the gateway's single-token read


def test_the_gateway_reads_one_token_and_none_once_it_is_gone(world):
    gateway = world.gateway_for("prod")

    record = gateway.get_token("t-alice")
    world.prod.revoke_token("t-alice")

    assert record is not None and record.comment == "notebooks" and record.autoscope_state == RUNNING
    assert gateway.get_token("t-alice") is None
    assert gateway.delete_token("t-alice") is False


# =============================================================================================
# trust: serial self-extension, made-up deadlines


def test_serial_self_extension_stops_at_the_total_limit_and_goes_to_the_admins(world):
    original = world.deadline("t-alice", DeadlineKind.ORG_POLICY).due_at

    first = extend(world, ALICE, "t-alice", DeadlineKind.ORG_POLICY, days=30)  # from the new deadline
    second = extend(world, ALICE, "t-alice", DeadlineKind.ORG_POLICY, days=30)
    third = extend(world, ALICE, "t-alice", DeadlineKind.ORG_POLICY, days=1)

    assert (first.status, second.status) == ("applied", "applied")
    assert world.deadline("t-alice", DeadlineKind.ORG_POLICY).due_at == original + timedelta(days=60)
    assert third.status == "requested"
    assert "beyond 60 days past the original deadline" in third.message
    assert third.parameters["original_due_at"] == original.isoformat()
    assert [e.until for e in exemptions(world)] == [original + timedelta(days=30), original + timedelta(days=60)]

    approved = world.decide(decisions.approve, actor=ADMIN, decision_id=third.decision_id)

    assert approved.status == "applied"
    assert (exemptions(world)[-1].requested_by, exemptions(world)[-1].approved_by) == ("UALICE", "UADMIN1")
    assert world.deadline("t-alice", DeadlineKind.ORG_POLICY).due_at == original + timedelta(days=61)


def test_an_owner_extension_that_would_pass_the_total_waits_for_an_admin(world):
    original = world.deadline("t-alice", DeadlineKind.ORG_POLICY).due_at
    assert extend(world, ALICE, "t-alice", DeadlineKind.ORG_POLICY, days=30).status == "applied"
    assert extend(world, ALICE, "t-alice", DeadlineKind.ORG_POLICY, days=20).status == "applied"

    outcome = extend(world, ALICE, "t-alice", DeadlineKind.ORG_POLICY, days=20)  # within one click's limit

    assert outcome.status == "requested"
    assert f"could extend until {(original + timedelta(days=60)).date().isoformat()}" in outcome.message
    assert len(exemptions(world)) == 2


def test_an_admin_is_not_held_to_the_total_limit(world):
    assert extend(world, ALICE, "t-alice", DeadlineKind.ORG_POLICY, days=30).status == "applied"
    assert extend(world, ADMIN, "t-alice", DeadlineKind.ORG_POLICY, days=100).status == "applied"


def test_a_made_up_deadline_is_refused_as_stale_and_nothing_is_exempted(world):
    made_up = decisions.DeadlineRef(kind="org_policy", due_at=datetime(2199, 1, 1, tzinfo=UTC))

    outcome = extend(world, ALICE, "t-alice", DeadlineKind.ORG_POLICY, days=30, deadline=made_up)

    assert outcome.status == "refused" and outcome.parameters["refused"] == "stale_reference"
    assert "out of date" in outcome.message and "2199-01-01" in outcome.message
    assert exemptions(world) == []
    assert extend(world, ADMIN, "t-alice", DeadlineKind.ORG_POLICY, deadline=made_up).status == "refused"


def test_an_extension_is_computed_from_the_deadline_tokenbot_computes_not_the_references_time(world):
    real = world.deadline("t-alice", DeadlineKind.ORG_POLICY)
    same_day_other_time = decisions.DeadlineRef(kind="org_policy", due_at=real.due_at + timedelta(hours=20))
    if same_day_other_time.due_date != real.due_date:
        same_day_other_time = decisions.DeadlineRef(kind="org_policy", due_at=real.due_at - timedelta(hours=1))

    outcome = extend(world, ALICE, "t-alice", DeadlineKind.ORG_POLICY, days=10, deadline=same_day_other_time)

    assert outcome.status == "applied"
    assert exemptions(world)[0].until == real.due_at + timedelta(days=10)


def test_a_moved_deadline_is_stale_for_every_decision_about_it(world):
    before = world.deadline("t-alice", DeadlineKind.ORG_POLICY)
    assert extend(world, ALICE, "t-alice", DeadlineKind.ORG_POLICY, days=10).status == "applied"
    stale = decisions.DeadlineRef(kind=before.kind, due_at=before.due_at, stale=True)
    pk = world.pk("t-alice")

    outcomes = [
        extend(world, ALICE, "t-alice", DeadlineKind.ORG_POLICY, deadline=before),
        world.decide(decisions.accept, actor=ALICE, token_pk=pk, deadline=stale),
        world.decide(decisions.snooze, actor=ALICE, token_pk=pk, deadline=stale),
        world.decide(decisions.revoke, actor=ALICE, token_pk=pk, deadline=stale),
    ]

    assert [o.parameters.get("refused") for o in outcomes] == ["stale_reference"] * 4
    assert deletes_of(world.prod, "t-alice") == [] and len(exemptions(world)) == 1


def test_a_denied_request_is_not_filed_again_by_the_same_person_for_the_same_deadline(world):
    pk = world.pk("t-alice")
    asked = extend(world, ALICE, "t-alice", DeadlineKind.ORG_POLICY, days=90)
    lost = world.decide(decisions.not_mine, actor=ALICE, token_pk=pk)
    world.decide(decisions.deny, actor=ADMIN, decision_id=asked.decision_id, reason="no")
    world.decide(decisions.deny, actor=ADMIN, decision_id=lost.decision_id)

    again = extend(world, ALICE, "t-alice", DeadlineKind.ORG_POLICY, days=90)
    lost_again = world.decide(
        decisions.not_mine,
        actor=ALICE,
        token_pk=pk,
        deadline=world.deadline("t-alice", DeadlineKind.ORG_POLICY),  # with a deadline or without
    )

    assert [o.parameters.get("refused") for o in (again, lost_again)] == ["denied_before"] * 2
    assert "already denied this request" in again.message and "<@UADMIN1>" in again.message
    assert again.duplicate_of == asked.decision_id
    assert [d.status for d in world.decisions(status="requested")] == []  # nothing holds the token
    assert extend(world, ALICE, "t-alice", DeadlineKind.ORG_POLICY, days=10).status == "applied"
