"""`/tokens` end to end: the Slack sandbox's driver types a really signed slash command, the bolt
app behind uvicorn acks and answers at the command's response_url, reading tokenbot's database and
calling the Databricks sandbox only where a subcommand changes something."""

from __future__ import annotations

import json
import logging
import threading
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot import clock, db
from bot.models import Exemption
from bot.slack.blocks.commands import DigestNow
from bot.slack.ids import Subcommand
from tests.support.bot_server import http_only, wait_for
from tests.support.command_helpers import (
    ADMIN,
    EVE,
    OWNER,
    REAL,
    SHARED_PREFIX,
    SP_TOKEN,
    Typist,
    action_values,
    databricks_mutations,
    decisions,
    everything,
    principal_of,
    served,
    token,
)
from tests.support.slack_helpers import DIGEST_CHANNEL, SLACK_TOML

ADMIN_ONLY = ("upcoming", "revoke", "extend", "owner", "whois", "risky", "stale", "sync", "digest", "export")


@pytest.fixture
def bot(tmp_path, monkeypatch, database_url, slack_mode):
    with served(tmp_path, monkeypatch, database_url, slack_mode) as world:
        yield Typist(world)


@pytest.fixture
def crowded(tmp_path, monkeypatch, database_url, slack_mode):
    """Owen has 24 more tokens: his list needs more than one page."""
    with served(tmp_path, monkeypatch, database_url, slack_mode, extra_owner_tokens=24) as world:
        yield Typist(world)


@pytest.fixture
def fresh(tmp_path, monkeypatch, database_url, slack_mode):
    """Right after `tokenbot db upgrade` and the first sync: no reminder run has looked anyone up."""
    with served(tmp_path, monkeypatch, database_url, slack_mode, remind=False) as world:
        yield Typist(world)


@pytest.fixture
def mapped(tmp_path, monkeypatch, database_url):
    """Slack emails at corp.example stand for Databricks emails at example.com."""
    slack_toml = SLACK_TOML + 'email_domains_map = { "corp.example" = "example.com" }\n'
    with served(tmp_path, monkeypatch, database_url, remind=False, slack_toml=slack_toml) as world:
        yield Typist(world)


# help, unknown input, permissions ----------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "help", "  HELP  "])
def test_help_lists_every_subcommand_and_how_long_answers_are_paged(bot, text):
    body = bot.answer(text, user=EVE)

    shown = everything(body)
    for name in Subcommand:
        assert f"/tokens {name}" in shown
    assert "Next page" in shown


def test_an_unknown_subcommand_gets_one_line_and_the_usage(bot):
    body = bot.answer("frobnicate everything", user=EVE)

    assert "`frobnicate everything`" not in body["text"]
    assert "`frobnicate` is not something `/tokens` can do" in body["text"]
    assert "/tokens mine" in everything(body)
    assert decisions(bot.world) == []


@pytest.mark.parametrize(
    "text", ["<!channel> hello", "show <!channel>", "upcoming 14 <!here>", "owner tok <!everyone>"]
)
def test_a_broadcast_in_the_text_is_never_echoed_as_one(bot, text):
    posted = len(bot.slack.calls("chat.postMessage"))

    body = bot.answer(text)

    shown = everything(body)
    for broadcast in ("<!channel>", "<!here>", "<!everyone>"):
        assert broadcast not in shown
    assert "&lt;!" in shown
    assert len(bot.slack.calls("chat.postMessage")) == posted


@pytest.mark.parametrize("subcommand", ADMIN_ONLY)
def test_admin_subcommands_are_refused_to_others_with_their_usage(bot, subcommand):
    body = bot.answer(f"{subcommand} tok-idle 5 because", user=OWNER)

    assert body["text"] == f"Only tokenbot admins can use `/tokens {subcommand}`."
    assert f"/tokens {subcommand}" in json.dumps(body["blocks"][1])
    assert decisions(bot.world) == [] and databricks_mutations(bot.world) == []
    assert bot.slack.files() == []


def test_the_command_is_acknowledged_at_once_and_answered_ephemerally(bot):
    response = bot.slack.command(bot.url, OWNER, "mine", mode=bot.mode)

    assert response.status == 200 and response.elapsed < 1.0
    wait_for(lambda: bot.slack.response_url_posts(), what="the answer")
    [post] = bot.slack.response_url_posts()
    assert post["body"]["response_type"] == "ephemeral"
    assert bot.slack.ephemerals(OWNER)[-1]["via"] == "response_url"


# mine ----------------------------------------------------------------------------------------------


def test_mine_lists_the_callers_tokens_with_a_reminders_buttons(bot):
    body = bot.answer("mine", user=OWNER)

    shown = everything(body)
    assert "tok-observ" in shown and "tok-idle" in shown and SP_TOKEN[:10] not in shown
    assert action_values(body, "token_confirm_scopes")  # the observed token's enforcement
    # tok-observed, tok-idle, shared-prod-1, and shared-dev-1: Owen's by email in dev too
    assert len(action_values(body, "token_revoke")) == 4
    assert all(value.startswith("t") for value in action_values(body, "token_accept"))


def test_the_buttons_of_mine_decide_like_a_reminders(bot):
    bot.answer("mine", user=OWNER)
    shown = bot.ephemeral(OWNER)
    block = next(
        b
        for b in shown["blocks"]
        if b.get("block_id", "").startswith("token:") and "tok-idle" in json.dumps(b)
    )
    reference = block["block_id"].removeprefix("token:")

    bot.slack.click(
        bot.url,
        OWNER,
        shown["channel"],
        shown["ts"],
        "token_accept",
        block_id=f"actions:{reference}",
        mode=bot.mode,
    )

    wait_for(lambda: decisions(bot.world, "accept"), what="the accept decision")
    [accepted] = decisions(bot.world, "accept")
    assert (accepted.status, accepted.actor_slack_id) == ("applied", OWNER)
    assert accepted.parameters["deadline_kind"] == "org_policy"
    told = wait_for(lambda: [e for e in bot.slack.ephemerals(OWNER) if "no more reminders" in e["text"]])
    assert told


def test_an_owner_never_reminded_sees_their_tokens_with_mine_and_show(fresh):
    assert principal_of(fresh.world, "tok-idle").slack_user_id is None  # nobody looked Owen up yet

    shown = everything(fresh.answer("mine", user=OWNER))

    assert "tok-observ" in shown and "tok-idle" in shown and SP_TOKEN[:10] not in shown
    assert "tok-idle" in everything(fresh.answer("show tok-idle", user=OWNER))
    assert principal_of(fresh.world, "tok-idle").slack_user_id == OWNER  # the match is kept
    assert "no live Databricks tokens" in fresh.answer("mine", user=EVE)["text"]


def test_a_mixed_case_databricks_email_matches_the_slack_email(fresh):
    prod = fresh.world.org["prod"]
    fresh.slack.add_user(id="U0MIXED", email="mixed.case@example.com", name="Mixed")
    owner = prod.add_user(user_name="Mixed.Case@Example.COM")
    prod.add_token(token_id="tok-mixed", owner_id=owner, comment="mixed", scopes=["sql"])
    fresh.world.sync()

    assert "tok-mixed" in everything(fresh.answer("mine", user="U0MIXED"))


def test_mine_for_someone_without_tokens_says_so(bot):
    assert "no live Databricks tokens" in bot.answer("mine", user=EVE)["text"]


def test_mine_takes_no_arguments(bot):
    body = bot.answer("mine please", user=OWNER)
    assert "`mine` takes no arguments" in body["text"]
    assert "/tokens mine" in json.dumps(body["blocks"])


def test_a_long_answer_is_paged_and_the_pager_replaces_it_in_place(crowded):
    body = crowded.answer("mine", user=OWNER)

    assert len(body["blocks"]) <= 42
    assert action_values(body, "tokens_next_page") == ["2 mine"]
    assert "Page 1 of" in everything(body)
    first = crowded.ephemeral(OWNER)

    crowded.slack.click(
        crowded.url, OWNER, first["channel"], first["ts"], "tokens_next_page", mode=crowded.mode
    )

    wait_for(lambda: "Page 2 of" in json.dumps(crowded.slack.ephemerals(OWNER)[-1]["blocks"]), what="page 2")
    second = crowded.slack.ephemerals(OWNER)[-1]
    assert second["ts"] == first["ts"]  # replaced, not added
    assert action_values(second, "tokens_previous_page") == ["1 mine"]
    on_first = {b["block_id"] for b in body["blocks"] if b.get("block_id", "").startswith("token:")}
    on_second = {b["block_id"] for b in second["blocks"] if b.get("block_id", "").startswith("token:")}
    assert on_first and on_second and not on_first & on_second


# upcoming ------------------------------------------------------------------------------------------


def test_upcoming_groups_the_next_fourteen_days_by_day(bot):
    body = bot.answer("upcoming")

    shown = everything(body)
    assert "Deadlines in the next 14 days" in shown
    assert "Auto-scoping enforcement" in shown and "Organisation policy" in shown
    assert "tok-observ" in shown and "tok-idle" in shown
    assert "shared-pro" not in shown  # its deadline is 60 days away
    headings = [b["text"]["text"].split("\n")[0] for b in body["blocks"] if b["type"] == "section"]
    assert all(h.startswith("*") and " · " in h for h in headings)  # "*Sat 28 Nov 2026 · 2*"


def test_upcoming_takes_days_and_a_workspace(bot):
    assert "Nothing is due in the next 3 days in dev" in bot.answer("upcoming 3 dev")["text"]
    assert "shared-pro" in everything(bot.answer("upcoming 90 prod"))
    assert "shared-dev" in everything(bot.answer("upcoming dev 90"))  # in either order


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("upcoming 0", "is not a number of days from 1 to 365"),
        ("upcoming 9999", "is not a number of days from 1 to 365"),
        ("upcoming 14 nowhere", "There is no workspace `nowhere`"),
        ("upcoming 14 prod extra", "Too many arguments"),
        ("upcoming prod dev", "at most a number of days and a workspace"),
    ],
)
def test_upcoming_refuses_bad_arguments(bot, text, says):
    body = bot.answer(text)
    assert says in body["text"]
    assert "/tokens upcoming [days] [workspace]" in json.dumps(body["blocks"])


# show ----------------------------------------------------------------------------------------------


def test_show_gives_the_token_its_deadlines_findings_and_history(bot):
    bot.answer("extend tok-idle 10 quarter close")

    body = bot.answer("show tok-idle", user=OWNER)

    shown = everything(body)
    assert "`tok-idle`" in shown and "*prod*" in shown
    assert "Organisation policy" in shown and "Revocation for inactivity" in shown
    assert "Decisions (1, newest first)" in shown and "quarter close" in shown


def test_show_accepts_the_ten_character_prefix_of_messages(bot):
    assert "`tok-observed`" in everything(bot.answer("show tok-observ", user=OWNER))


def test_an_ambiguous_prefix_names_the_workspaces(bot):
    body = bot.answer(f"show {SHARED_PREFIX}")

    assert "matches 2 tokens (1 in *dev*, 1 in *prod*)" in body["text"]
    assert "workspace/id" in body["text"]
    assert "`shared-dev-1`" in everything(bot.answer(f"show dev/{SHARED_PREFIX}"))


def test_show_is_for_the_owner_or_an_admin(bot):
    assert "knows no token of yours `tok-idle`" in bot.answer("show tok-idle", user=EVE)["text"]
    assert "`tok-idle`" in everything(bot.answer("show tok-idle", user=ADMIN))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("show", "Which token?"),
        ("show nope-nope", "tokenbot knows no token `nope-nope`"),
        ("show a b", "One token id"),
        ("show %", "is not a token id"),
    ],
)
def test_show_refuses_bad_arguments(bot, text, says):
    body = bot.answer(text)
    assert says in body["text"]
    assert "/tokens show &lt;token_id&gt;" in json.dumps(body["blocks"])


# revoke ----------------------------------------------------------------------------------------------


def test_revoke_asks_for_confirmation_and_the_button_revokes(bot):
    body = bot.answer("revoke tok-idle nobody uses it")

    assert "nobody uses it" in everything(body)
    [button] = [e for b in body["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert button["action_id"] == "token_revoke" and button["confirm"]["confirm"]["text"] == "Revoke"
    assert decisions(bot.world) == [] and databricks_mutations(bot.world) == []  # nothing yet
    shown = bot.ephemeral(ADMIN)

    bot.slack.click(bot.url, ADMIN, shown["channel"], shown["ts"], "token_revoke", mode=bot.mode)

    wait_for(lambda: decisions(bot.world, "revoke"), what="the revoke")
    [revoked] = decisions(bot.world, "revoke")
    assert (revoked.status, revoked.actor_slack_id, revoked.actor_role) == ("applied", ADMIN, "admin")
    assert revoked.parameters["reason"] == "nobody uses it"
    assert [r.method for r in databricks_mutations(bot.world)] == ["DELETE"]
    assert token(bot.world, "tok-idle").gone_reason == "revoked"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("revoke", "Which token?"),
        ("revoke tok-idle", "Say why"),
        ("revoke nope-nope because", "knows no token"),
    ],
)
def test_revoke_refuses_bad_arguments(bot, text, says):
    body = bot.answer(text)
    assert says in body["text"]
    assert "/tokens revoke &lt;token_id&gt; &lt;reason&gt;" in json.dumps(body["blocks"])
    assert action_values(body, "token_revoke") == []


# extend, owner -------------------------------------------------------------------------------------


def test_extend_grants_an_exemption_from_the_organisations_deadline(bot):
    body = bot.answer("extend tok-idle 10 quarter close")

    assert "Extended" in body["text"]
    [extended] = decisions(bot.world, "extend")
    assert (extended.status, extended.parameters["days"], extended.parameters["reason"]) == (
        "applied",
        10,
        "quarter close",
    )
    with db.session_scope(bot.world.engine) as session:
        [exemption] = session.execute(select(Exemption)).scalars().all()
    assert exemption.deadline_kind == "org_policy" and exemption.approved_by == ADMIN
    assert databricks_mutations(bot.world) == []


def test_extend_and_owner_answers_escape_a_comment_once(bot):
    prod = bot.world.org["prod"]
    etl = prod.add_service_principal(application_id="app-loud", display_name="loud")
    prod.add_token(
        token_id="tok-loud",
        owner_id=etl,
        comment="<!channel> & co",
        created_at=clock.now() - timedelta(days=300),
        last_used_at=clock.now() - timedelta(days=55),
        scopes=["sql"],
    )
    bot.world.sync()

    answers = [bot.answer("extend tok-loud 10 quarter close"), bot.answer(f"owner tok-loud <@{REAL}>")]

    for body in answers:
        shown = everything(body)
        assert "&lt;!channel&gt; &amp; co" in shown and "&amp;lt;" not in shown and "<!channel>" not in shown
    assert f"<@{REAL}> now owns" in answers[1]["text"]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("extend", "Missing the token id"),
        ("extend tok-idle", "Missing the number of days"),
        ("extend tok-idle 10", "Missing the reason"),
        ("extend tok-idle ten because", "`ten` is not a number of days from 1 to 365"),
        ("extend tok-idle 0 because", "is not a number of days"),
    ],
)
def test_extend_refuses_bad_arguments(bot, text, says):
    body = bot.answer(text)
    assert says in body["text"]
    assert "/tokens extend &lt;token_id&gt; &lt;days&gt; &lt;reason&gt;" in json.dumps(body["blocks"])
    assert decisions(bot.world) == []


@pytest.mark.parametrize("mention", [f"<@{REAL}|real>", f"<@{REAL}>"])
def test_owner_assigns_a_service_principals_token(bot, mention):
    body = bot.answer(f"owner {SP_TOKEN[:10]} {mention}")

    assert f"<@{REAL}> now owns" in everything(body)
    [assigned] = decisions(bot.world, "assign_owner")
    assert assigned.status == "applied"
    assert principal_of(bot.world, SP_TOKEN).owner_slack_id == REAL


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("owner", "Give a token id and a person"),
        (f"owner {SP_TOKEN}", "Give a token id and a person"),
        (f"owner {SP_TOKEN} real", "`real` is not a Slack user"),
        (f"owner {SP_TOKEN} <@{REAL}> extra", "Too many arguments"),
    ],
)
def test_owner_refuses_bad_arguments(bot, text, says):
    body = bot.answer(text)
    assert says in body["text"]
    assert principal_of(bot.world, SP_TOKEN).owner_slack_id is None


# whois -----------------------------------------------------------------------------------------------


def test_whois_shows_the_principals_of_a_person_and_why(bot):
    bot.answer(f"owner {SP_TOKEN[:10]} <@{OWNER}>")

    body = bot.answer(f"whois <@{OWNER}|owen>")

    shown = everything(body)
    assert f"<@{OWNER}> (`owen@example.com`) is matched to 3 Databricks principals" in body["text"]
    assert "*dev* · user `owen@example.com`: the same email" in shown
    assert "*prod* · service principal `app-etl` (etl): assigned by an admin (`/tokens owner`)" in shown


def test_whois_matches_someone_who_never_used_tokenbot_and_says_so_when_nothing_matches(fresh):
    assert principal_of(fresh.world, "tok-idle").slack_user_id is None

    assert "is matched to 2 Databricks principals" in fresh.answer(f"whois <@{OWNER}>")["text"]
    assert principal_of(fresh.world, "tok-idle").slack_user_id == OWNER
    nothing = fresh.answer(f"whois <@{EVE}>")["text"]
    assert "(`eve@example.com`) is matched to no Databricks principal" in nothing
    assert "Slack knows no user" in fresh.answer("whois <@U0NOBODY>")["text"]


def test_an_email_at_a_mapped_domain_matches_and_whois_says_so(mapped):
    prod = mapped.world.org["prod"]
    mapped.slack.add_user(id="U0MIA", email="mia@corp.example", name="Mia")
    prod.add_token(token_id="tok-mia", owner_id=prod.add_user(user_name="Mia@Example.com"), scopes=["sql"])
    mapped.world.sync()

    assert "tok-mia" in everything(mapped.answer("mine", user="U0MIA"))
    shown = everything(mapped.answer("whois <@U0MIA>"))
    assert "user `Mia@Example.com`: an email at a mapped domain" in shown
    assert "`corp.example` → `example.com`" in shown


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("whois", "Whom? Mention one person"),
        ("whois ada", "`ada` is not a Slack user"),
        ("whois <@U0A> <@U0B>", "One person"),
    ],
)
def test_whois_refuses_bad_arguments(bot, text, says):
    assert says in bot.answer(text)["text"]


# risky, stale ------------------------------------------------------------------------------------------


def test_risky_lists_tokens_with_findings_worst_first(bot):
    body = bot.answer("risky")

    shown = everything(body)
    assert "Can create tokens" in shown
    assert shown.index(SP_TOKEN[:10]) < shown.index("tok-idle")  # privileged_scope is the worst
    assert action_values(body, "tokens_next_page") == []  # one page


def test_stale_lists_tokens_unused_for_the_given_days(bot):
    assert "Every live token was used in the last 60 days" in bot.answer("stale")["text"]
    body = bot.answer("stale 50")
    assert "tok-idle" in everything(body) and "tok-observ" not in everything(body)
    assert "55 days ago" in everything(body)
    assert "is not a number of days" in bot.answer("stale soon")["text"]


# sync, digest, policy, export --------------------------------------------------------------------------


def test_sync_answers_when_done_with_a_line_per_workspace(bot):
    started, done = bot.ask("sync", answers=2)

    assert started["text"].startswith("Syncing 2 workspaces")
    lines = everything(done)
    assert "Sync done." in done["text"]
    assert "prod: 4 tokens" in lines and "dev: 1 tokens" in lines


def test_sync_reports_a_workspace_that_failed(bot):
    bot.world.org["dev"].down()
    _, done = bot.ask("sync", answers=2)
    assert "1 workspace failed" in done["text"] and "dev: FAILED" in everything(done)


def test_digest_posts_through_the_configured_job_or_says_it_is_not_set_up(bot):
    posted = threading.Event()

    def post_digest() -> DigestNow:
        posted.set()
        return DigestNow(channel=DIGEST_CHANNEL, summary="3 deadlines this week & <!here>")

    bot.world.server.deps.post_digest = None
    assert "not configured" in bot.answer("digest")["text"]

    bot.world.server.deps.post_digest = post_digest
    body = bot.answer("digest")

    assert posted.is_set()
    assert body["text"] == f"Digest posted to <#{DIGEST_CHANNEL}>: 3 deadlines this week &amp; &lt;!here&gt;"
    assert bot.slack.messages(DIGEST_CHANNEL) == []  # the job posts; the command only starts it


def test_digest_says_once_where_it_posted(bot):
    body = bot.answer("digest")

    assert body["text"].startswith(f"Digest posted to <#{DIGEST_CHANNEL}>: ")
    assert body["text"].count("Digest posted") == 1 and "&lt;#" not in body["text"]


def test_policy_is_stated_in_plain_words_for_anyone(bot):
    shown = everything(bot.answer("policy", user=EVE))

    assert "14, 7, 3 and 1 days before" in shown
    assert "Tokens unused for 60 days are due for revocation" in shown
    assert "`policy.enforce` is off" in shown
    assert "up to 30 days" in shown
    assert f"<#{DIGEST_CHANNEL}>" in shown


def test_export_uploads_the_report_csv_to_the_callers_dm(bot):
    body = bot.answer("export")

    assert "Sent" in body["text"]
    [upload] = bot.slack.files()
    assert upload["completed"] and upload["channels"] == [bot.slack.dm_channel(ADMIN)]
    content = upload["content"].decode()
    assert content.splitlines()[0].startswith("workspace,token_id,owner")
    assert "tok-idle" in content and SP_TOKEN in content


def test_export_takes_no_arguments(bot):
    assert "`export` takes no arguments" in bot.answer("export now")["text"]
    assert bot.slack.files() == []


# anything at all -----------------------------------------------------------------------------------------


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


WORDS = [s.value for s in Subcommand] + [
    "tok-idle",
    "tok-observ",
    "shared",
    "prod/tok-idle",
    "dev/",
    "<!channel>",
    "<!here|here>",
    f"<@{REAL}|real>",
    "<#C0ADMINS|admins>",
    "&lt;script&gt;",
    "%",
    "_",
    "0",
    "-1",
    "99999999999999999999",
    "١٢",  # digits that are not ASCII
    "²",  # a digit to str.isdigit, not to int()
    "\u202etxet",
    "`",
    "*bold*",
]
MUTATING_FOR_ADMINS = {"sync", "digest", "export", "extend", "owner"}
texts = st.one_of(
    st.text(max_size=120),
    st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=12)), max_size=6).map(" ".join),
)


@pytest.fixture
def watched(bot):
    errors = _Errors()
    loggers = [logging.getLogger(), logging.getLogger("uvicorn.error")]
    for logger in loggers:
        logger.addHandler(errors)
    yield bot, errors
    for logger in loggers:
        logger.removeHandler(errors)


@http_only  # about reading any text, which is the same whichever way it came
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts, user=st.sampled_from([EVE, OWNER, ADMIN]))
@example(text="stale ²", user=ADMIN)
@example(text="upcoming ² prod", user=ADMIN)
@example(text="show <!channel>", user=EVE)
def test_any_text_is_answered_and_changes_nothing(watched, text, user):
    bot, errors = watched
    words = text.split()
    assume(not (user == ADMIN and words and words[0].lower() in MUTATING_FOR_ADMINS))
    logged = len(errors.records)
    messages_before = len(bot.slack.calls("chat.postMessage"))

    [body] = bot.ask(text, user=user)

    assert body.get("text") and body.get("response_type") == "ephemeral"
    assert [r.getMessage() for r in errors.records[logged:]] == []
    assert [d for d in decisions(bot.world) if d.status != "refused"] == []
    assert databricks_mutations(bot.world) == []
    assert len(bot.slack.calls("chat.postMessage")) == messages_before
    assert bot.slack.files() == []
    shown = everything(body)
    assert "<!channel>" not in shown and "<!here" not in shown


@pytest.mark.parametrize("limit", ["uses", "age"])
def test_an_answer_the_response_url_refuses_comes_as_an_ephemeral_message(bot, limit):
    """Slack takes 5 posts within 30 minutes at a response_url, then answers 404."""
    if limit == "uses":
        bot.slack.response_url_uses = 0
    else:
        bot.slack.response_url_ttl = -1.0

    response = bot.slack.command(bot.url, OWNER, "mine", mode=bot.mode)

    assert response.status == 200
    answer = wait_for(
        lambda: [e for e in bot.slack.ephemerals(OWNER) if e["via"] == "chat.postEphemeral"],
        timeout=30,
        what="the answer",
    )[-1]
    assert "Your 4 Databricks tokens" in answer["blocks"][0]["text"]["text"]
    assert bot.slack.response_url_posts() == []
