"""Claim, call, record, on both databases: a decision's Databricks call holds no transaction (a
decision on another token completes meanwhile), the claim refuses every other decision about the
token while it runs, and a claim a stopped process left `in_progress` is settled from what
Databricks says (`decisions.claims.settle`), never by calling again."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from bot import clock
from bot.domain.deadlines import DeadlineKind
from bot.services import decisions
from bot.services.decisions import claims
from tests.support.decisions_helpers import (
    ADMIN,
    ALICE,
    OPS,
    deletes_of,
    extend,
    make_world,
)


@pytest.fixture
def world(tmp_path, monkeypatch, database_url):
    with make_world(tmp_path, monkeypatch, database_url) as world:
        yield world


class Stopped(BaseException):
    """The process dies here (as SIGKILL would): nothing after it runs."""


class StopsAround:
    """A gateway whose `method` stops the process before or after the real call."""

    def __init__(self, inner, method: str, after: bool):
        self.inner, self.method, self.after = inner, method, after

    def __getattr__(self, name):
        real = getattr(self.inner, name)
        if name != self.method:
            return real

        def stop(*args, **kwargs):
            if self.after:
                real(*args, **kwargs)
            raise Stopped

        return stop


def stopped(world, function, method: str, after: bool, **arguments) -> None:
    """Run the decision with the process stopping at `method`: its claim stays in progress."""
    arguments["gateway_for"] = lambda name: StopsAround(world.gateway_for(name), method, after)
    with pytest.raises(Stopped):
        world.decide(function, **arguments)
    [claim] = world.decisions(status="in_progress")
    assert claim.idempotency_key or claim.action != "revoke"


def settle(world, minutes: float = 16) -> dict[int, str]:
    from bot import db

    with db.session_scope(world.engine) as session:
        return claims.settle(
            session=session, gateway_for=world.gateway_for, now=clock.now() + timedelta(minutes=minutes)
        )


def in_background(call):
    done: dict = {}

    def run():
        try:
            done["outcome"] = call()
        except BaseException as error:  # shown by the test's assertion
            done["outcome"] = error

    thread = threading.Thread(target=run)
    thread.start()
    return thread, done


def wait(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


# =============================================================================================
# claim, call, record


def test_a_decision_on_another_token_completes_while_a_databricks_call_is_under_way(world):
    arrived, release = threading.Event(), threading.Event()

    class HeldDelete:
        """t-alice's DELETE waits (at most a minute) until the test lets it go."""

        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def delete_token(self, token_id):
            arrived.set()
            release.wait(timeout=60)
            return self.inner.delete_token(token_id)

    first, done = in_background(
        lambda: world.decide(decisions.revoke, gateway_for=lambda name: HeldDelete(world.gateway_for(name)),
                             actor=ALICE, token_pk=world.pk("t-alice"), reason="x")
    )
    assert arrived.wait(timeout=60)

    other = world.decide(decisions.revoke, actor=ADMIN, token_pk=world.pk("t-etl"), reason="y")
    same = world.decide(decisions.revoke, actor=ADMIN, token_pk=world.pk("t-alice"), reason="z")
    scopes = world.decide(decisions.confirm_scopes, actor=ADMIN, token_pk=world.pk("t-alice"), scopes=["sql"])
    release.set()  # only now: everything above completed while t-alice's DELETE was held
    first.join(timeout=60)

    assert other.status == "applied"
    assert done["outcome"].status == "applied"
    # While it ran, the claim refused the same decision and any other about the token, naming who.
    for refused in (same, scopes):
        assert refused.status == "refused" and refused.parameters["refused"] == "duplicate"
        assert refused.duplicate_of == done["outcome"].decision_id
        assert "<@UALICE> is already deciding about token t-alice" in refused.message
    assert len(deletes_of(world.prod, "t-alice")) == 1
    assert [d.status for d in world.decisions(action="revoke")] == ["applied", "applied", "refused"]
    assert world.decisions(action="confirm_scopes")[0].status == "refused"


# =============================================================================================
# settling what a stopped process left


def test_a_young_claim_is_left_to_the_process_that_holds_it(world):
    stopped(world, decisions.revoke, "delete_token", after=True, actor=ALICE, token_pk=world.pk("t-alice"))

    assert settle(world, minutes=1) == {}
    assert [d.status for d in world.decisions(action="revoke")] == ["in_progress"]


def test_a_revoke_stopped_after_the_delete_is_settled_applied_without_a_second_delete(world):
    stopped(world, decisions.revoke, "delete_token", after=True, actor=ALICE, token_pk=world.pk("t-alice"))
    refused = world.decide(decisions.revoke, actor=ALICE, token_pk=world.pk("t-alice"))

    settled = settle(world)

    assert refused.status == "refused" and "is already deciding" in refused.message
    [claim] = world.decisions(action="revoke", status="applied")
    assert settled == {claim.id: "applied"}
    assert claim.parameters["settled_after_stop"] and claim.parameters["verified"]
    assert world.token("t-alice").gone_at is not None
    assert len(deletes_of(world.prod, "t-alice")) == 1
    assert settle(world) == {}  # nothing left to settle
    again = world.decide(decisions.revoke, actor=ALICE, token_pk=world.pk("t-alice"))
    assert again.status == "refused" and "already revoked by <@UALICE>" in again.message


def test_a_revoke_stopped_before_the_delete_is_settled_failed_and_may_be_tried_again(world):
    stopped(world, decisions.revoke, "delete_token", after=False, actor=ALICE, token_pk=world.pk("t-alice"))

    settle(world)

    [claim] = world.decisions(action="revoke")
    assert claim.status == "failed" and claim.parameters["error_kind"] == "stopped"
    assert claim.idempotency_key.startswith("revoke:") and ":failed:" in claim.idempotency_key
    assert deletes_of(world.prod, "t-alice") == []
    retried = world.decide(decisions.retry, actor=ALICE, decision_id=claim.id, policy=world.settings.policy)
    assert retried.status == "applied" and len(deletes_of(world.prod, "t-alice")) == 1


@pytest.mark.parametrize("after", [True, False], ids=["patched", "not-patched"])
def test_a_scopes_change_stopped_at_the_patch_is_settled_from_the_scopes_read_back(world, after):
    stopped(world, decisions.confirm_scopes, "update_scopes", after=after, actor=ADMIN,
            token_pk=world.pk("t-alice"), scopes=["sql"])

    settle(world)

    [claim] = world.decisions(action="confirm_scopes")
    live = next(t for t in world.prod.tokens() if t["token_id"] == "t-alice")
    if after:
        assert claim.status == "applied" and world.token("t-alice").scopes == ["sql"]
        assert live["scopes"] == ["sql"]
    else:
        assert claim.status == "failed" and world.token("t-alice").scopes != ["sql"]
    assert [r.method for r in world.prod.requests if r.method == "PATCH"] == (["PATCH"] if after else [])


def test_a_rotation_stopped_after_the_create_revokes_the_token_nobody_stored(world):
    extend_args = {"actor": OPS, "token_pk": world.pk("t-etl"), "deadline": world.deadline("t-etl", DeadlineKind.EXPIRY),
                   "days": 10, "reason": "", "policy": world.settings.policy,
                   "secret_bindings": world.settings.secret_bindings}
    stopped(world, decisions.extend, "create_obo_token", after=True, **extend_args)
    [created] = [t for t in world.prod.tokens() if "[tokenbot rotation" in (t.get("comment") or "")]

    from bot import db

    with db.session_scope(world.engine) as session:
        decisions.complete_rotations(session=session, gateway_for=world.gateway_for,
                                     now=clock.now() + timedelta(minutes=16))

    [claim] = world.decisions(action="rotate")
    assert claim.status == "failed" and claim.parameters["outcome"] == "not_stored"
    assert claim.parameters["new_token_id"] == created["token_id"]
    assert ":failed:" in claim.idempotency_key  # a new Extend rotates again
    assert created["token_id"] not in {t["token_id"] for t in world.prod.tokens()}
    assert not [r for r in world.prod.requests if r.path.endswith("/secrets/put")]  # never written
    again = extend(world, OPS, "t-etl", DeadlineKind.EXPIRY)
    assert again.status == "applied" and again.action == "rotate"
