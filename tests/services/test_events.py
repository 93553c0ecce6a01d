"""Auto-scoping events: the signed webhook through the real HTTP app, and `tokenbot events import`.

An event is refused (nothing stored) unless it is signed, fresh and well formed; the same id
twice is stored once; a reminder event moves the token's enforcement date, and an event about a
token tokenbot has not synced yet waits for that sync."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bot import clock, db
from bot.cli.main import app
from bot.domain.deadlines import DeadlineKind
from bot.models import Event, Token
from bot.services import report
from bot.webhook import make_webhook, sign
from tests.support.autoscope_helpers import SECRET, enforced, event, gateways, post_event
from tests.support.bot_server import running_bot
from tests.support.world import observed_token

ENFORCEMENT = datetime(2030, 1, 15, tzinfo=UTC)
OBSERVED = "tok-observed"


@pytest.fixture
def hook(world, monkeypatch):
    """prod has an observed token (enforcement derived 20 days away); the webhook is on."""
    monkeypatch.setenv("TOKENBOT_WEBHOOK_SECRET", SECRET)
    prod = world.org["prod"]
    observed_token(prod, prod.add_user(user_name="owen@example.com"), "tok-observed", 20)
    world.sync()
    webhook = make_webhook(engine=world.engine, settings=world.settings, gateway_for=gateways(world))
    with running_bot(world.settings, world.engine, webhook=webhook) as server:
        world.url = server.base_url + "/events/autoscope"
        yield world


def stored(world) -> list[Event]:
    with db.session_scope(world.engine) as session:
        return list(session.execute(select(Event).order_by(Event.id)).scalars())


def token(world, token_id=OBSERVED) -> Token:
    with db.session_scope(world.engine) as session:
        return session.execute(select(Token).where(Token.token_id == token_id)).scalar_one()


def enforcement_deadline(world, token_id=OBSERVED):
    with db.session_scope(world.engine) as session:
        views = report.token_views(session=session, policy=world.settings.policy, now=clock.now())
    [view] = [v for v in views if v.token_id == token_id]
    return next(d for d in view.evaluation.deadlines if d.kind is DeadlineKind.AUTOSCOPE_ENFORCEMENT)


# ---------------------------------------------------------------------------------------------
# webhook


def test_a_signed_reminder_sets_the_enforcement_date_and_inferred_scopes(hook):
    derived = enforcement_deadline(hook).due_at

    status, answer = post_event(hook.url, event(id="evt-1", inferred_scopes=["sql", "jobs"]))

    assert (status, answer["duplicate"], answer["applied"]) == (200, False, True)
    assert token(hook).enforcement_at == ENFORCEMENT
    assert token(hook).inferred_scopes == ["jobs", "sql"]
    deadline = enforcement_deadline(hook)
    assert deadline.due_at == ENFORCEMENT != derived  # the event beats the derived date
    assert "announced" in deadline.reason
    [row] = stored(hook)
    assert (row.idempotency_key, row.source, row.kind) == ("evt-1", "webhook", "autoscope.reminder")
    assert row.processed_at is not None


def test_a_later_reminder_corrects_the_date(hook):
    post_event(hook.url, event(id="evt-1"))
    post_event(hook.url, event(id="evt-2", enforcement_at="2030-02-01T12:00:00+02:00"))

    assert token(hook).enforcement_at == datetime(2030, 2, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    "how",
    ["no signature", "no timestamp", "wrong secret", "body changed after signing", "not v1", "garbage",
     "timestamp not a number"],
)
def test_a_missing_or_wrong_signature_is_401_and_stores_nothing(hook, how):
    body = json.dumps(event()).encode()
    stamp = str(int(time.time()))
    headers = {
        "no signature": {"X-Tokenbot-Signature": None},
        "no timestamp": {"X-Tokenbot-Timestamp": None},
        "wrong secret": {"X-Tokenbot-Signature": sign("another-secret", stamp, body)},
        "body changed after signing": {"X-Tokenbot-Signature": sign(SECRET, stamp, body[:-1] + b" }")},
        "not v1": {"X-Tokenbot-Signature": sign(SECRET, stamp, body).replace("v1=", "v0=")},
        "garbage": {"X-Tokenbot-Signature": "v1=zz"},
        "timestamp not a number": {"X-Tokenbot-Timestamp": "abc", "X-Tokenbot-Signature": sign(SECRET, "abc", body)},
    }[how]

    status, answer = post_event(hook.url, body, headers=headers, timestamp=float(stamp))

    assert status == 401, answer
    assert answer["ok"] is False and "X-Tokenbot" in answer["error"]
    assert stored(hook) == [] and token(hook).enforcement_at is None


def test_an_unsigned_request_is_401(hook):
    status, _ = post_event(hook.url, event(), secret=None)
    assert status == 401 and stored(hook) == []


@pytest.mark.parametrize("offset", [-310, +310, -3600])  # whole seconds on the wire: a margin
def test_a_timestamp_more_than_five_minutes_away_is_refused(hook, offset):
    status, answer = post_event(hook.url, event(), timestamp=time.time() + offset)

    assert status == 401 and "5 minutes" in answer["error"]
    assert stored(hook) == []


def test_a_timestamp_within_five_minutes_is_accepted(hook):
    status, _ = post_event(hook.url, event(), timestamp=time.time() - 280)
    assert status == 200


def test_replaying_the_same_id_is_a_duplicate_stored_once(hook):
    first = post_event(hook.url, event(id="evt-replay"))
    again = post_event(hook.url, event(id="evt-replay"))  # a fresh signature: a sender's retry
    changed = post_event(hook.url, event(id="evt-replay", enforcement_at="2031-06-01T00:00:00Z"))

    assert first == (200, {"ok": True, "id": "evt-replay", "duplicate": False, "applied": True})
    assert again == (200, {"ok": True, "id": "evt-replay", "duplicate": True})
    assert changed[1]["duplicate"] is True
    assert len(stored(hook)) == 1
    assert token(hook).enforcement_at == ENFORCEMENT  # the replay changed nothing


def test_ten_deliveries_of_one_id_at_once_store_it_once(hook):
    payload = event(id="evt-burst")
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(lambda _: post_event(hook.url, payload), range(10)))

    assert {status for status, _ in answers} == {200}
    assert sorted(answer["duplicate"] for _, answer in answers) == [False] + [True] * 9
    assert len(stored(hook)) == 1


MALFORMED = [
    # (what, body, the field the answer names)
    ("not JSON", b"{not json", "body"),
    ("not UTF-8", b'{"id": "\xff\xfe"}', "body"),
    ("not an object", b'["autoscope.reminder"]', "body"),
    ("no id", event(id=None), "id"),
    ("empty id", event(id="  "), "id"),
    ("numeric id", event(id=123), "id"),
    ("no type", event(type=None), "type"),
    ("unknown type", event(type="autoscope.cancelled"), "type"),
    ("no workspace", event(workspace=None), "workspace"),
    ("no token_id", event(token_id=None), "token_id"),
    ("a token_id that is a path", event(token_id="../../../preview/scim/v2/Users"), "token_id"),
    ("reminder without enforcement_at", event(enforcement_at=None), "enforcement_at"),
    ("enforcement_at not a time", event(enforcement_at="next tuesday"), "enforcement_at"),
    ("enforcement_at without a zone", event(enforcement_at="2030-01-15T00:00:00"), "enforcement_at"),
    ("enforcement_at a number", event(enforcement_at=1767225600), "enforcement_at"),
    ("inferred_scopes not a list", event(inferred_scopes="sql"), "inferred_scopes"),
    ("a scope that is not text", event(inferred_scopes=["sql", 7]), "inferred_scopes[1]"),
    ("enforced without scopes", enforced(scopes=None), "scopes"),
    ("enforced with no scopes", enforced(scopes=[]), "scopes"),
]


@pytest.mark.parametrize(("what", "body", "field"), MALFORMED, ids=[case[0] for case in MALFORMED])
def test_a_malformed_event_is_400_naming_the_field_and_nothing_is_stored(hook, what, body, field):
    status, answer = post_event(hook.url, body)

    assert status == 400, (what, answer)
    assert answer["field"] == field
    assert answer["error"].startswith(f"{field}: ")
    assert stored(hook) == []
    assert token(hook).enforcement_at is None


def test_an_unknown_workspace_is_400_and_names_the_configured_ones(hook):
    status, answer = post_event(hook.url, event(workspace="staging"))

    assert status == 400
    assert answer["field"] == "workspace"
    assert "'staging' is not a configured workspace (configured: dev, prod)" in answer["error"]
    assert stored(hook) == []


def test_without_a_secret_the_webhook_is_off(world):
    assert make_webhook(engine=world.engine, settings=world.settings, gateway_for=gateways(world)) is None
    with running_bot(world.settings, world.engine, webhook=None) as server:
        status, _ = post_event(server.base_url + "/events/autoscope", event())
    assert status == 404
    assert stored(world) == []


def test_an_event_for_a_token_not_synced_yet_applies_when_the_sync_lists_it(hook):
    prod = hook.org["prod"]
    observed_token(prod, prod.add_user(user_name="nia@example.com"), "tok-new", 25)  # not synced yet
    status, answer = post_event(hook.url, event(id="evt-early", token_id="tok-new"))
    assert (status, answer["applied"]) == (200, False)
    [row] = stored(hook)
    assert (row.processed_at, row.status) == (None, "pending")

    hook.sync()

    assert token(hook, "tok-new").enforcement_at == ENFORCEMENT
    assert (stored(hook)[0].processed_at is not None, stored(hook)[0].status) == (True, "applied")
    assert enforcement_deadline(hook, "tok-new").due_at == ENFORCEMENT


def test_an_enforced_event_records_the_narrowing_databricks_shows(hook):
    hook.org["prod"].set_autoscope(OBSERVED, "AUTOSCOPE_STATE_COMPLETED", scopes=["sql"])

    status, _ = post_event(hook.url, enforced(enforcement_at="2026-03-01T06:00:00Z", scopes=["sql"]))

    assert status == 200
    narrowed = token(hook)
    assert (narrowed.previous_scopes, narrowed.scopes) == (["all-apis"], ["sql"])
    assert narrowed.autoscope_state == "AUTOSCOPE_STATE_COMPLETED"
    assert narrowed.narrowed_at == datetime(2026, 3, 1, 6, tzinfo=UTC)
    assert stored(hook)[0].status == "applied"
    reads = [r for r in hook.org["prod"].requests if r.method == "GET" and r.path.endswith(f"/{OBSERVED}")]
    assert reads, "the token was read from Databricks before the event was believed"


FORGED = [
    # (what, Databricks narrowed the token to, the event, words of the reason)
    ("still observed", None, enforced(scopes=["sql"], previous_scopes=["sql", "jobs"]), "still observes"),
    ("other scopes", ["sql"], enforced(scopes=["sql", "jobs"]), "with scopes sql, not jobs, sql"),
    ("scopes set by hand", ("AUTOSCOPE_STATE_USER_SELECTED", ["sql"]), enforced(scopes=["sql"]),
     "does not show token tok-observed in prod narrowed by auto-scoping (auto-scoping state"),
    ("unknown token", None, enforced(token_id="tok-made-up"), "Databricks has no token tok-made-up in prod"),
]


@pytest.mark.parametrize(("what", "narrowed", "body", "reason"), FORGED, ids=[case[0] for case in FORGED])
def test_an_enforced_event_databricks_contradicts_is_rejected_and_changes_nothing(
    hook, what, narrowed, body, reason
):
    state, narrowed = narrowed if isinstance(narrowed, tuple) else ("AUTOSCOPE_STATE_COMPLETED", narrowed)
    if narrowed:
        hook.org["prod"].set_autoscope(OBSERVED, state, scopes=narrowed)
    before = token(hook)

    status, answer = post_event(hook.url, body)

    assert status == 409, answer
    assert answer["rejected"] is True and reason in answer["error"]
    [row] = stored(hook)
    assert (row.status, row.processed_at is not None) == ("rejected", True)
    assert reason in row.reason
    after = token(hook)
    assert (after.scopes, after.previous_scopes, after.narrowed_at, after.autoscope_state) == (
        before.scopes,
        before.previous_scopes,
        None,
        before.autoscope_state,
    )
    hook.sync()  # a later sync records only what Databricks shows, never the event's claim
    assert stored(hook)[0].status == "rejected"
    assert token(hook).scopes == (narrowed or ["all-apis"])


def test_a_reminder_for_a_token_databricks_no_longer_observes_is_rejected(hook):
    hook.org["prod"].set_autoscope(OBSERVED, "AUTOSCOPE_STATE_USER_SELECTED", scopes=["sql"])

    status, answer = post_event(hook.url, event())

    assert status == 409 and "does not observe" in answer["error"]
    assert token(hook).enforcement_at is None and stored(hook)[0].status == "rejected"


def test_a_reminder_with_an_enforcement_date_in_the_past_is_refused(hook):
    status, answer = post_event(hook.url, event(enforcement_at="2020-01-01T00:00:00Z"))

    assert status == 400
    assert answer["field"] == "enforcement_at" and "is in the past" in answer["error"]
    assert stored(hook) == [] and token(hook).enforcement_at is None


def test_an_event_databricks_cannot_confirm_now_waits_for_the_next_sync(hook):
    prod = hook.org["prod"]
    prod.fail("GET", f"/token-management/tokens/{OBSERVED}$", 500, times=1)

    status, answer = post_event(hook.url, enforced(scopes=["sql"]))

    assert (status, answer["applied"]) == (200, False) and "not checked" in answer["note"]
    assert token(hook).narrowed_at is None and stored(hook)[0].status == "pending"
    hook.sync()  # the listing still shows the token observed: the event is contradicted
    assert stored(hook)[0].status == "rejected" and token(hook).narrowed_at is None


# ---------------------------------------------------------------------------------------------
# import


def test_import_reports_the_bad_lines_and_imports_the_good_ones(world, tmp_path):
    prod = world.org["prod"]
    observed_token(prod, prod.add_user(user_name="owen@example.com"), "tok-observed", 20)
    world.sync()
    lines = [
        json.dumps(event(id="evt-a")),
        "{this is not json",
        "",
        json.dumps(event(id="evt-b", workspace="staging")),
        json.dumps(event(id="evt-c", token_id="tok-unknown")),
        json.dumps(event(id="evt-d", enforcement_at=None)),
        json.dumps(event(id="evt-a")),  # the same id again
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")

    result = CliRunner().invoke(app, ["events", "import", str(path)])

    assert result.exit_code == 1, result.output
    output = " ".join(result.output.split())
    assert "line 2: not valid JSON" in output
    assert "line 4: workspace: 'staging' is not a configured workspace" in output
    assert "line 6: enforcement_at: is required" in output
    assert "line 7: evt-a is already stored (duplicate)" in output
    assert "line 5: rejected: Databricks has no token tok-unknown in prod" in output
    assert "line 1:" not in output
    assert "Imported 1 event(s) (1 applied to known tokens" in output and "1 rejected" in output
    assert [(e.idempotency_key, e.status) for e in stored(world)] == [("evt-a", "applied"), ("evt-c", "rejected")]
    assert token(world).enforcement_at == ENFORCEMENT


def test_a_clean_import_exits_0_and_a_second_import_stores_nothing_twice(world, tmp_path):
    prod = world.org["prod"]
    observed_token(prod, prod.add_user(user_name="nia@example.com"), "tok-not-synced", 20)
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(event(id="evt-x", token_id="tok-not-synced")) + "\n")
    runner = CliRunner()

    first = runner.invoke(app, ["events", "import", str(path)])
    second = runner.invoke(app, ["events", "import", str(path)])

    assert (first.exit_code, second.exit_code) == (0, 0), first.output + second.output
    assert "1 duplicate(s)" in second.output
    assert len(stored(world)) == 1


def test_a_naive_time_is_never_stored(hook):
    """No event row may carry a time without a zone: PostgreSQL and SQLite would disagree on it."""
    post_event(hook.url, event(id="evt-zone", enforcement_at="2030-01-15"))
    [row] = stored(hook)
    assert row.received_at.tzinfo is not None
    assert token(hook).enforcement_at == ENFORCEMENT  # a bare date is midnight UTC
    assert clock.now() - row.received_at < timedelta(minutes=1)


def test_import_output_carries_no_terminal_control_sequences(world, tmp_path):
    path = tmp_path / "events.jsonl"
    hostile = "tok\x1b[2J\x1b]8;;http://evil.example\x1b\\x"
    lines = [event(id="evt-\x1b[31mred", token_id=hostile), event(id="evt-\x1b[31mred", token_id="tok-none")]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines * 2))

    result = CliRunner().invoke(app, ["events", "import", str(path)])

    assert result.exit_code == 1
    output = result.stdout_bytes.decode() + result.stderr_bytes.decode()
    assert "\x1b" not in output
    assert "line 1: token_id: 'tok\\x1b[2J" in output and "is not a token id" in output
    assert "line 2: rejected: Databricks has no token tok-none" in output
    assert "line 4: evt-[31mred is already stored" in output
