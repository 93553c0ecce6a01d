"""Matching Databricks users to Slack users: the whole directory at once (`users.list`, real
slack_sdk against the Slack sandbox), the domain map, and what a reminder run then still asks."""

from __future__ import annotations

import math

import pytest
from slack_sdk.errors import SlackApiError
from sqlalchemy import select
from typer.testing import CliRunner

from bot import clock, db
from bot.cli.main import app
from bot.config import ConfigError, load_settings
from bot.databricks.gateway import gateway_factory
from bot.jobs import runners as scheduler
from bot.models import Principal, Workspace
from bot.services import recipients
from bot.slack import directory
from bot.slack.client import make_client
from bot.slack.directory import SlackDirectory
from tests.support.slack_helpers import ADMIN_CHANNEL
from tests.support.world import observed_token


def _principals(engine, rows: list[dict]) -> None:
    with db.session_scope(engine) as session:
        if session.get(Workspace, "prod") is None:
            session.add(Workspace(name="prod", host="https://prod.example"))
            session.flush()
        session.add_all(Principal(workspace="prod", **row) for row in rows)


def _principal(engine, principal_id: str) -> Principal:
    with db.session_scope(engine) as session:
        return session.execute(select(Principal).where(Principal.principal_id == principal_id)).scalar_one()


def _refresh(world, domains_map=None, always=True):
    client = make_client(world.settings)
    return directory.refresh(world.engine, client, domains_map or {}, clock.now(), always=always)


def test_the_whole_directory_matches_5000_owners_in_a_page_per_200_users(world):
    for index in range(5000):
        world.slack.add_user(id=f"U{index:06d}", email=f"owner{index}@example.com", name=f"Owner {index}")
    # Databricks keeps the case people typed; Slack's emails are lower case.
    _principals(
        world.engine,
        [{"principal_id": str(i), "kind": "user", "email": f"Owner{i}@Example.com"} for i in range(5000)],
    )
    before = len(world.slack.calls())

    found = _refresh(world)

    calls = world.slack.calls()[before:]
    assert found.matched == 5000 and found.missed == 0
    assert len(calls) <= math.ceil(5000 / 200) + 3
    assert {call["method"] for call in calls} == {"users.list"}
    assert _principal(world.engine, "4321").slack_user_id == "U004321"


def test_without_the_email_scope_slack_lists_no_emails_and_nobody_is_matched(world):
    world.slack.add_user(id="U0ADA", email="ada@example.com", name="Ada")
    _principals(world.engine, [{"principal_id": "1", "kind": "user", "email": "ada@example.com"}])
    world.slack.scopes = [scope for scope in world.slack.scopes if scope != "users:read.email"]

    found = _refresh(world)

    assert (found.matched, found.missed) == (0, 1)  # manifest.yml asks for users:read.email for this


def test_deactivated_users_and_bots_are_not_matched_and_say_why(world):
    world.slack.add_user(id="U0GONE", email="gone@example.com", name="Gone", deleted=True)
    world.slack.add_user(id="U0BOT", email="robot@example.com", name="Robot", is_bot=True)
    _principals(
        world.engine,
        [
            {"principal_id": "1", "kind": "user", "email": "gone@example.com"},
            {"principal_id": "2", "kind": "user", "email": "robot@example.com"},
            {"principal_id": "3", "kind": "user", "email": "nobody@example.com"},
        ],
    )

    found = _refresh(world)

    assert (found.matched, found.unreachable, found.missed) == (0, 2, 1)
    gone = _principal(world.engine, "1")
    assert gone.slack_user_id is None
    assert gone.slack_missing_reason == "no active Slack user has the email gone@example.com"
    assert _principal(world.engine, "3").slack_checked_at is None  # left to a lookup by email


def test_owners_missing_from_slack_are_left_to_lookups_without_reading_the_directory_again(world):
    _principals(
        world.engine,
        [{"principal_id": str(i), "kind": "user", "email": f"outsider{i}@example.com"} for i in range(30)],
    )
    with db.session_scope(world.engine) as session:
        assert recipients.directory_worth_reading(session=session, now=clock.now())

    assert _refresh(world, always=False).missed == 30

    with db.session_scope(world.engine) as session:
        assert not recipients.directory_worth_reading(session=session, now=clock.now())
    assert _principal(world.engine, "7").slack_checked_at is None  # the reminder run still looks them up


def test_a_mapped_domain_matches_and_the_very_email_wins_over_it(world):
    world.slack.add_user(id="U0ADA", email="ada@corp.example", name="Ada")
    world.slack.add_user(id="U0BOB", email="bob@corp.example", name="Bob (corp)")
    world.slack.add_user(id="U0BOB2", email="bob@example.com", name="Bob")
    _principals(
        world.engine,
        [
            {"principal_id": "1", "kind": "user", "email": "Ada@example.com"},
            {"principal_id": "2", "kind": "user", "email": "bob@example.com"},
        ],
    )

    _refresh(world, {"corp.example": "example.com"})

    assert _principal(world.engine, "1").slack_user_id == "U0ADA"
    assert _principal(world.engine, "2").slack_user_id == "U0BOB2"


def test_a_lookup_by_email_tries_the_mapped_domain(world):
    world.slack.add_user(id="U0ADA", email="ada@corp.example", name="Ada")
    client = make_client(world.settings)

    found = SlackDirectory(client, {"corp.example": "example.com"}).lookup_email("Ada@Example.com")

    assert found is not None and found.id == "U0ADA"
    assert SlackDirectory(client).lookup_email("ada@example.com") is None


def test_after_the_directory_a_first_reminder_run_looks_nobody_up(world):
    world.slack.add_user(id="U0GONE", email="gone@example.com", name="Gone", deleted=True)
    prod = world.org["prod"]
    for index in range(30):
        world.slack.add_user(id=f"U0O{index:03d}", email=f"o{index}@example.com", name=f"O{index}")
        observed_token(prod, prod.add_user(user_name=f"O{index}@Example.com"), f"t{index:02d}", 5)
    observed_token(prod, prod.add_user(user_name="gone@example.com"), "t-gone", 5)
    world.sync()
    with db.session_scope(world.engine) as session:
        assert recipients.directory_worth_reading(session=session, now=clock.now())
    _refresh(world, always=False)
    before = len(world.slack.calls())

    summary = world.remind()

    calls = world.slack.calls()[before:]
    assert not [c for c in calls if c["method"] in ("users.lookupByEmail", "users.info")]
    assert summary.sent_messages == 31  # 30 owners and the admins channel
    [message] = world.slack.messages(ADMIN_CHANNEL)
    assert "no active Slack user has the email gone@example.com" in str(message["blocks"])
    with db.session_scope(world.engine) as session:
        assert not recipients.directory_worth_reading(session=session, now=clock.now())


def test_users_list_pages_with_a_cursor_and_refuses_a_forged_one(world):
    for index in range(5):
        world.slack.add_user(id=f"U0P{index}", email=f"p{index}@example.com", name=f"P{index}")
    client = make_client(world.settings)

    first = client.users_list(limit=4)
    second = client.users_list(limit=4, cursor=first["response_metadata"]["next_cursor"])

    assert len(first["members"]) == 4 and second["response_metadata"]["next_cursor"] == ""
    everyone = {m["id"] for m in first["members"] + second["members"]}
    assert {"U0P0", "U0P4", "U0SANDBOT"} <= everyone and len(everyone) == 7  # and the admin
    with pytest.raises(SlackApiError) as error:
        client.users_list(limit=4, cursor="bm90IGEgY3Vyc29y")
    assert error.value.response["error"] == "invalid_cursor"


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ('{ "corp example" = "example.com" }', "'corp example' is not an email domain"),
        ('{ "corp.example" = "@example.com" }', "'@example.com' is not an email domain"),
        ('{ "example.com" = "EXAMPLE.com" }', "'example.com' is mapped to itself"),
        ('{ "Corp.example" = "example.com", "corp.example" = "example.org" }', "given twice"),
        ('"corp.example"', "slack.email_domains_map: Input should be a valid dictionary"),
    ],
)
def test_a_bad_domain_map_is_refused_with_a_clear_message(tmp_path, value, says):
    path = tmp_path / "tokenbot.toml"
    path.write_text(f"[slack]\nemail_domains_map = {value}\n")

    with pytest.raises(ConfigError) as error:
        load_settings({"TOKENBOT_CONFIG": str(path)})

    [problem] = error.value.problems
    assert problem.startswith(f"{path}: slack.email_domains_map") and says in problem


def test_the_domain_map_is_kept_in_lower_case(tmp_path):
    path = tmp_path / "tokenbot.toml"
    path.write_text('[slack]\nemail_domains_map = { "Corp.Example" = "Example.COM" }\n')

    settings = load_settings({"TOKENBOT_CONFIG": str(path)})

    assert settings.slack.email_domains_map == {"corp.example": "example.com"}


def _thirty_owners(world) -> None:
    prod = world.org["prod"]
    for index in range(30):
        world.slack.add_user(id=f"U0O{index:03d}", email=f"o{index}@example.com", name=f"O{index}")
        observed_token(prod, prod.add_user(user_name=f"o{index}@example.com"), f"t{index:02d}", 5)


def test_the_scheduled_sync_reads_the_directory_when_it_saves_lookups(world):
    _thirty_owners(world)
    settings = world.settings
    context = scheduler.JobContext(
        settings=settings,
        engine=world.engine,
        client=make_client(settings),
        gateway_for=gateway_factory(settings.workspaces, settings.databricks),
    )

    scheduler.sync_job(context)

    assert world.slack.calls("users.list") and not world.slack.calls("users.lookupByEmail")
    with db.session_scope(world.engine) as session:
        linked = session.execute(select(Principal.slack_user_id).where(Principal.kind == "user")).scalars()
        assert sorted(linked) == [f"U0O{index:03d}" for index in range(30)]
    pages = len(world.slack.calls("users.list"))

    scheduler.sync_job(context)  # everyone matched: another read would save nothing

    assert len(world.slack.calls("users.list")) == pages


def test_tokenbot_sync_reads_the_directory_too(world):
    _thirty_owners(world)

    result = CliRunner().invoke(app, ["sync"])  # 30 owners, the admin and the bot in Slack

    assert result.exit_code == 0, result.output
    assert "Slack directory: 32 users read, 30 owners matched, 0 left to a lookup by email." in result.output


def test_a_burst_of_clicks_matches_the_clicker_once_a_minute(world, monkeypatch):
    """Each click identifies its clicker; the match to their principals (a query and maybe a
    write) runs once per LINK_TTL."""
    world.slack.add_user(id="U0ADA", email="ada@example.com", name="Ada")
    _principals(world.engine, [{"principal_id": "p1", "kind": "user", "email": "ada@example.com", "active": True}])
    matched: list[str] = []
    real = recipients.link_slack_user

    def counting(**kwargs):
        matched.append(kwargs["user"].email)
        return real(**kwargs)

    monkeypatch.setattr(recipients, "link_slack_user", counting)
    seconds = [1000.0]
    identities = directory.Identities(world.engine, {}, monotonic=lambda: seconds[0])
    client = make_client(world.settings)
    for _ in range(20):
        assert identities.identify(client, "U0ADA").email == "ada@example.com"
    assert matched == ["ada@example.com"]
    assert _principal(world.engine, "p1").slack_user_id == "U0ADA"

    seconds[0] += directory.LINK_TTL + 1
    identities.identify(client, "U0ADA")
    assert len(matched) == 2  # a principal added by a sync meanwhile would be matched now
