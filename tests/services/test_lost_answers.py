"""Writes that Databricks applies and whose answer is then lost (a dropped connection, an answer
after the client's timeout): the revoke, the PATCH of scopes, and each step of a rotation. Each
case checks what Databricks holds afterwards, that no live token is left that nobody knows of,
that nothing is rotated twice, that the decision records what is true, and what the person hears.

The real databricks-sdk retries such requests (connection errors and timeouts, every method) until
`retry_timeout_seconds`: a fault `times=1` is absorbed by one retry, `times=100` outlasts them."""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import datetime, timedelta

import pytest

from bot import clock
from bot.config import SecretBinding
from bot.domain.deadlines import DeadlineKind
from bot.services import decisions
from bot.services.decisions import lost_answers
from tests.support.decisions_helpers import (
    ADMIN,
    ALICE,
    ETL_ID,
    OPS,
    SECRET_KEY,
    SECRET_SCOPE,
    deletes_of,
    extend,
    make_world,
)

ALWAYS = 100  # more attempts than the SDK makes within its retry budget
OBO = r"/token-management/on-behalf-of/tokens$"
PUT = r"/secrets/put$"
LIST_TOKENS = r"/token-management/tokens$"
LIST_SECRETS = r"/secrets/list$"


@pytest.fixture
def world(tmp_path, monkeypatch, database_url):
    """A workspace whose client retries for 1 s: a lost answer outlasts the SDK's retries fast."""
    with make_world(tmp_path, monkeypatch, database_url, retry_timeout_seconds=1) as world:
        yield world


@pytest.fixture
def patient_world(tmp_path, monkeypatch, database_url):
    """15 s of retries: one lost answer is followed by a retry that gets through, even on a busy
    machine (the SDK sleeps 1-2 s before its first retry)."""
    with make_world(tmp_path, monkeypatch, database_url, retry_timeout_seconds=15) as world:
        yield world


def live_ids(world) -> set[str]:
    return {t["token_id"] for t in world.prod.tokens()}


def etl_tokens(world) -> set[str]:
    return {t["token_id"] for t in world.prod.tokens() if t["owner_id"] == int(ETL_ID)}


def rotate(world, actor=OPS):
    return extend(world, actor, "t-etl", DeadlineKind.EXPIRY)


def retry(world, outcome, actor=OPS):
    return world.decide(
        decisions.retry,
        actor=actor,
        decision_id=outcome.decision_id,
        policy=world.settings.policy,
        secret_bindings=world.settings.secret_bindings,
    )


def stored_token_id(world) -> str | None:
    """The id of the token whose value the bound secret holds (the sandbox's ids are its hash)."""
    value = world.prod.secrets().get((SECRET_SCOPE, SECRET_KEY))
    return hashlib.sha256(value.encode()).hexdigest() if value else None


def once_requested(sandbox, method: str, path_part: str, then) -> threading.Thread:
    """Run `then()` as soon as the sandbox has seen such a request (polling, in a thread)."""

    def watch() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if any(r.method == method and path_part in r.path for r in list(sandbox.requests)):
                then()
                return
            time.sleep(0.01)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def secrets_unreadable_after_the_write(world) -> threading.Thread:
    """secrets/list answers before the write (tokenbot reads the key's time) and never after it:
    the write's answer comes late (3 s, past the 2 s client timeout), time enough to switch."""
    return once_requested(
        world.prod, "POST", "/secrets/put", lambda: world.prod.fail("GET", LIST_SECRETS, drop=True, times=ALWAYS)
    )


def rotations(world):
    return world.decisions(action="rotate")


def creates(world):
    return [r for r in world.prod.requests if r.method == "POST" and r.path.endswith("/on-behalf-of/tokens")]


# =============================================================================================
# revoke: DELETE


def test_a_revoke_whose_answer_keeps_being_lost_is_checked_and_applied(world):
    world.prod.fail("DELETE", r"/tokens/t-alice$", apply_then_drop=True, times=ALWAYS)

    outcome = world.decide(decisions.revoke, actor=ALICE, token_pk=world.pk("t-alice"))

    assert outcome.status == "applied" and outcome.parameters["verified"] is True
    assert outcome.message.startswith("Revoked token t-alice")
    assert "checked that the token no longer exists" in outcome.message
    assert "t-alice" not in live_ids(world) and world.token("t-alice").gone_at is not None
    assert [d.status for d in world.decisions()] == ["applied"]


def test_a_revoke_that_never_arrived_is_checked_and_reported_not_done(world):
    world.prod.fail("DELETE", r"/tokens/t-alice$", drop=True, times=ALWAYS)  # dropped before applying

    outcome = world.decide(decisions.revoke, actor=ALICE, token_pk=world.pk("t-alice"))

    assert outcome.status == "failed" and outcome.retryable
    assert outcome.message.endswith("tokenbot checked: the token still exists and still works. You can try again.")
    assert "t-alice" in live_ids(world) and world.token("t-alice").gone_at is None
    world.prod.clear_faults()
    assert world.decide(decisions.revoke, actor=ALICE, token_pk=world.pk("t-alice")).status == "applied"


def test_a_revoke_nobody_can_check_says_so(world):
    world.prod.fail("DELETE", r"/tokens/t-alice$", apply_then_drop=True, times=ALWAYS)
    world.prod.fail("GET", r"/tokens/t-alice$", 0, drop=True, times=ALWAYS)

    outcome = world.decide(decisions.revoke, actor=ALICE, token_pk=world.pk("t-alice"))

    assert outcome.status == "failed" and outcome.parameters["verified"] is False
    assert "could not check whether it was revoked, so it may still work" in outcome.message
    assert "Nothing was changed" not in outcome.message
    assert world.token("t-alice").gone_at is None
    world.prod.clear_faults()
    retried = world.decide(decisions.revoke, actor=ALICE, token_pk=world.pk("t-alice"))
    assert retried.status == "applied" and retried.already_gone  # the first one had landed


def test_a_revoke_that_could_not_connect_at_all_is_known_not_done(world):
    world.prod.stop()  # connection refused: the request never left

    outcome = world.decide(decisions.revoke, actor=ALICE, token_pk=world.pk("t-alice"))

    assert outcome.status == "failed" and "answer_lost" not in outcome.parameters
    assert outcome.message.endswith("Nothing was changed; you can try again.")


def test_a_revoke_whose_answer_is_lost_once_is_retried_by_the_sdk_and_applied_once(patient_world):
    world = patient_world
    world.prod.fail("DELETE", r"/tokens/t-alice$", apply_then_drop=True)

    outcome = world.decide(decisions.revoke, actor=ALICE, token_pk=world.pk("t-alice"))

    assert outcome.status == "applied" and len(deletes_of(world.prod, "t-alice")) == 2
    assert "or by this request, whose first answer may have been lost" in outcome.message
    assert "t-alice" not in live_ids(world) and world.token("t-alice").gone_at is not None
    assert [d.status for d in world.decisions()] == ["applied"]


# =============================================================================================
# confirm scopes: PATCH


def confirm(world, scopes):
    return world.decide(decisions.confirm_scopes, actor=ALICE, token_pk=world.pk("t-alice"), scopes=scopes)


def test_a_patch_whose_answer_keeps_being_lost_is_read_back_and_applied(world):
    world.prod.fail("PATCH", r"/tokens/t-alice$", apply_then_drop=True, times=ALWAYS)

    outcome = confirm(world, ["sql"])

    assert outcome.status == "applied" and outcome.parameters["answer_lost"] is True
    assert "tokenbot read the scopes back to check" in outcome.message
    [token] = [t for t in world.prod.tokens() if t["token_id"] == "t-alice"]
    assert token["scopes"] == ["sql"] and world.token("t-alice").scopes == ["sql"]


def test_a_patch_answered_too_late_is_read_back_and_applied(world):
    world.prod.fail("PATCH", r"/tokens/t-alice$", answer_late_by=3, times=ALWAYS)  # http timeout: 2 s

    outcome = confirm(world, ["sql"])

    assert outcome.status == "applied" and world.token("t-alice").scopes == ["sql"]


def test_a_patch_that_never_arrived_is_read_back_and_reported_not_done(world):
    world.prod.fail("PATCH", r"/tokens/t-alice$", drop=True, times=ALWAYS)

    outcome = confirm(world, ["sql"])

    assert outcome.status == "failed"
    assert "tokenbot read the token back: the new scopes were not set. Nothing was changed" in outcome.message
    assert world.token("t-alice").scopes == ["all-apis"]


def test_a_patch_nobody_can_check_says_so(world):
    world.prod.fail("PATCH", r"/tokens/t-alice$", apply_then_drop=True, times=ALWAYS)
    # the read before the PATCH works; the read back after it does not
    world.prod.fail("GET", r"/tokens/t-alice$", drop=True, times=ALWAYS, after=1)

    outcome = confirm(world, ["sql"])

    assert outcome.status == "failed" and "may or may not have changed" in outcome.message
    assert world.token("t-alice").scopes == ["all-apis"]  # the database claims nothing unchecked


# =============================================================================================
# rotation: create


def test_a_create_the_sdk_sent_twice_leaves_one_new_token(patient_world):
    world = patient_world
    world.prod.fail("POST", OBO, apply_then_drop=True)  # the first answer is lost; the SDK sends again

    outcome = rotate(world)

    assert outcome.status == "applied" and len(creates(world)) == 2
    new_id = outcome.parameters["new_token_id"]
    assert etl_tokens(world) == {"t-etl", new_id} and stored_token_id(world) == new_id
    [orphan] = outcome.parameters["orphans_revoked"]
    assert orphan != new_id and len(deletes_of(world.prod, orphan)) == 1
    assert "tokenbot found and revoked them" in outcome.message
    assert [d.status for d in rotations(world)] == ["applied"]


def test_a_create_whose_answer_keeps_being_lost_leaves_no_live_token_and_retry_rotates_once(world):
    world.prod.fail("POST", OBO, apply_then_drop=True, times=ALWAYS)

    failed = rotate(world)

    assert failed.status == "failed" and failed.retryable
    made = failed.parameters["orphans_revoked"]
    assert len(made) == len(creates(world)) >= 1  # every token the lost calls made was revoked
    assert etl_tokens(world) == {"t-etl"} and world.prod.secrets() == {}
    assert "tokenbot found and revoked them. The old token is unchanged; you can try again." in failed.message
    world.prod.clear_faults()

    retried = retry(world, failed)

    assert retried.status == "applied"
    assert etl_tokens(world) == {"t-etl", retried.parameters["new_token_id"]}
    assert stored_token_id(world) == retried.parameters["new_token_id"]
    assert [d.status for d in rotations(world)] == ["failed", "applied"]


def test_a_lost_create_that_cannot_be_checked_is_cleaned_up_by_the_next_attempt(world):
    world.prod.fail("POST", OBO, apply_then_drop=True, times=ALWAYS)
    world.prod.fail("GET", LIST_TOKENS, drop=True, times=ALWAYS)

    failed = rotate(world)

    assert failed.status == "failed"
    assert "could not check whether Databricks made a new token anyway" in failed.message
    unknown = etl_tokens(world) - {"t-etl"}
    assert unknown  # live, marked with the rotation's decision id
    assert all(f"[tokenbot rotation {failed.decision_id}]" in t["comment"] for t in world.prod.tokens()
               if t["token_id"] in unknown)
    world.prod.clear_faults()

    retried = retry(world, failed)

    assert retried.status == "applied"
    assert set(retried.parameters["orphans_revoked"]) == unknown
    assert etl_tokens(world) == {"t-etl", retried.parameters["new_token_id"]}


# =============================================================================================
# rotation: the secret write


@pytest.mark.parametrize("lose", [{"apply_then_drop": True}, {"answer_late_by": 3}], ids=["dropped", "late"])
def test_a_secret_write_whose_answer_is_lost_is_checked_and_the_rotation_kept(world, lose):
    world.prod.fail("POST", PUT, times=ALWAYS, **lose)

    outcome = rotate(world)

    new_id = outcome.parameters["new_token_id"]
    assert outcome.status == "applied" and outcome.parameters["answer_lost"] is True
    assert "tokenbot checked that the secret was written" in outcome.message
    assert "will be revoked after" in outcome.message
    # The secret holds the new token and it works: nothing revoked it.
    assert stored_token_id(world) == new_id and etl_tokens(world) == {"t-etl", new_id}
    assert deletes_of(world.prod, new_id) == []
    assert len(creates(world)) == 1 and [d.status for d in rotations(world)] == ["applied"]
    world.prod.clear_faults()
    assert rotate(world, ADMIN).parameters["refused"] == "duplicate"  # no second rotation
    assert len(creates(world)) == 1
    # The old token goes after the grace period, as for any rotation.
    grace_end = datetime.fromisoformat(outcome.parameters["revoke_old_after"])
    [revoked] = world.decide(decisions.complete_rotations, now=grace_end)
    assert revoked.status == "applied" and etl_tokens(world) == {new_id}


def test_a_secret_write_that_never_arrived_is_checked_and_the_new_token_revoked(world):
    world.prod.fail("POST", PUT, drop=True, times=ALWAYS)

    outcome = rotate(world)

    new_id = outcome.parameters["new_token_id"]
    assert outcome.status == "failed" and outcome.retryable
    assert "tokenbot checked: the secret was not changed, and the old token still works until it expires" in (
        outcome.message
    )
    assert outcome.message.endswith("The new token was revoked again; nothing was changed.")
    assert etl_tokens(world) == {"t-etl"} and world.prod.secrets() == {}
    assert len(deletes_of(world.prod, new_id)) == 1
    world.prod.clear_faults()
    assert retry(world, outcome).status == "applied"


def test_a_secret_write_nobody_can_check_keeps_both_tokens_and_retry_settles_it_once(world):
    world.prod.fail("POST", PUT, answer_late_by=3, times=ALWAYS)
    switch = secrets_unreadable_after_the_write(world)

    unknown = rotate(world)
    switch.join()
    again = rotate(world, ADMIN)

    new_id = unknown.parameters["new_token_id"]
    assert unknown.status == "failed" and unknown.parameters["outcome"] == "unknown"
    assert "The new token is kept, in case the secret holds it; the old token t-etl" in unknown.message
    assert "is not revoked until the new one is known to be in the secret" in unknown.message
    assert "revoke_old_after" not in unknown.parameters
    assert etl_tokens(world) == {"t-etl", new_id} and stored_token_id(world) == new_id
    # Nothing else rotates this token meanwhile, and the old token's revocation is not scheduled.
    assert again.status == "refused" and "still unchecked" in again.message and len(creates(world)) == 1
    assert world.decide(decisions.complete_rotations, now=clock.now() + timedelta(days=30)) == []
    world.prod.clear_faults()

    settled = retry(world, unknown)

    assert settled.status == "refused" and settled.duplicate_of == unknown.decision_id
    assert "its new token is in secret etl-secrets/databricks-token" in settled.message
    [record] = rotations(world)[:1]
    assert record.status == "applied" and record.parameters["outcome"] == "verified"
    assert len(creates(world)) == 1 and etl_tokens(world) == {"t-etl", new_id}
    [revoked] = world.decide(decisions.complete_rotations, now=clock.now() + timedelta(days=2))
    assert revoked.status == "applied" and etl_tokens(world) == {new_id}


def test_an_unchecked_secret_write_that_did_not_land_is_revoked_and_rotated_again(world):
    world.prod.fail("POST", PUT, drop=True, delay=3, times=ALWAYS)  # never applied
    switch = secrets_unreadable_after_the_write(world)

    unknown = rotate(world)
    switch.join()
    world.prod.clear_faults()
    again = retry(world, unknown)

    first_id, second_id = unknown.parameters["new_token_id"], again.parameters["new_token_id"]
    assert unknown.parameters["outcome"] == "unknown"
    assert again.status == "applied" and again.message.startswith(
        "The last rotation's new token never reached the secret (checked now) and was revoked. Rotated:"
    )
    assert etl_tokens(world) == {"t-etl", second_id} and stored_token_id(world) == second_id
    assert len(deletes_of(world.prod, first_id)) == 1
    first = world.decisions(id=unknown.decision_id)[0]
    assert (first.status, first.parameters["outcome"]) == ("failed", "not_stored")
    assert [d.status for d in rotations(world)] == ["failed", "applied"]


def test_the_rotations_job_settles_an_unchecked_secret_write_that_landed(world):
    world.prod.fail("POST", PUT, answer_late_by=3, times=ALWAYS)
    switch = secrets_unreadable_after_the_write(world)
    unknown = rotate(world)
    switch.join()
    new_id = unknown.parameters["new_token_id"]
    still_down = world.decide(decisions.complete_rotations, now=clock.now())
    assert still_down == [] and world.decisions(id=unknown.decision_id)[0].status == "failed"
    world.prod.clear_faults()

    checked = world.decide(decisions.complete_rotations, now=clock.now())

    record = world.decisions(id=unknown.decision_id)[0]
    assert checked == [] and (record.status, record.parameters["outcome"]) == ("applied", "verified")
    assert etl_tokens(world) == {"t-etl", new_id}  # the old token lives until the grace period ends
    grace_end = datetime.fromisoformat(record.parameters["revoke_old_after"])
    [revoked] = world.decide(decisions.complete_rotations, now=grace_end)
    assert revoked.status == "applied" and etl_tokens(world) == {new_id} and stored_token_id(world) == new_id
    assert len(creates(world)) == 1


def test_the_rotations_job_revokes_the_new_token_of_an_unchecked_write_that_did_not_land(world):
    world.prod.fail("POST", PUT, drop=True, delay=3, times=ALWAYS)
    switch = secrets_unreadable_after_the_write(world)
    unknown = rotate(world)
    switch.join()
    world.prod.clear_faults()

    assert world.decide(decisions.complete_rotations, now=clock.now()) == []

    record = world.decisions(id=unknown.decision_id)[0]
    assert (record.status, record.parameters["outcome"]) == ("failed", "not_stored")
    assert etl_tokens(world) == {"t-etl"} and world.prod.secrets() == {}
    again = rotate(world)
    assert again.status == "applied" and stored_token_id(world) == again.parameters["new_token_id"]


def test_a_rotated_token_carries_one_mark_and_rotates_again_under_its_binding(world):
    exact = [SecretBinding(workspace="prod", comment_pattern="^nightly etl$", scope=SECRET_SCOPE, key=SECRET_KEY)]
    first = extend(world, OPS, "t-etl", DeadlineKind.EXPIRY, secret_bindings=exact)
    world.sync()
    new_id = first.parameters["new_token_id"]

    second = extend(world, OPS, new_id, DeadlineKind.EXPIRY, secret_bindings=exact)

    assert second.status == "applied"
    [made] = [t for t in world.prod.tokens() if t["token_id"] == second.parameters["new_token_id"]]
    assert made["comment"] == f"nightly etl [tokenbot rotation {second.decision_id}]"
    assert lost_answers.unmarked(made["comment"]) == "nightly etl"
    assert lost_answers.marks(made["comment"]) == {second.decision_id}
