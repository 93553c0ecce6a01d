"""The App Home end to end: the Slack sandbox's driver sends a signed `app_home_opened` event, the
bot publishes the tab (`views.publish`), and the buttons on it are clicked like Slack would."""

from __future__ import annotations

import json

import pytest

from tests.support.bot_server import wait_for
from tests.support.command_helpers import (
    ADMIN,
    EVE,
    OWNER,
    REAL,
    SP_TOKEN,
    decisions,
    principal_of,
    served,
    token,
)


@pytest.fixture
def bot(tmp_path, monkeypatch, database_url, slack_mode):
    with served(tmp_path, monkeypatch, database_url, slack_mode) as world:
        yield world


def open_home(world, user, *, after=None):
    """Open the Home tab and wait for the bot to (re)publish it; `after` is the version seen before."""
    response = world.slack.home_opened(world.server.slack_url, user, mode=world.server.mode)
    assert response.status == 200
    return wait_for_home(world, user, after)


def wait_for_home(world, user, after=None, containing=""):
    def published():
        homes = [v for v in world.slack.views(user) if v["type"] == "home"]
        if homes and homes[-1]["hash"] != (after or {}).get("hash") and containing in shown(homes[-1]):
            return homes[-1]
        return None

    return wait_for(published, what=f"the Home of {user}")


def shown(view) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)


def element_block(view, action_id, text):
    """The block id of the `action_id` element under the token whose blocks mention `text`."""
    blocks = view["blocks"]
    for index, block in enumerate(blocks):
        if text in json.dumps(block) and block["type"] == "section":
            for following in blocks[index + 1 : index + 4]:
                if following["type"] == "actions" and any(
                    e.get("action_id") == action_id for e in following["elements"]
                ):
                    return following["block_id"]
    raise AssertionError(f"no {action_id} under {text}")


def test_an_owner_sees_their_tokens_nearest_first_with_the_buttons(bot):
    home = open_home(bot, OWNER)

    text = shown(home)
    assert "For admins" not in text and "Waiting for an owner" not in text
    assert text.index("tok-idle") < text.index("shared-pro") and "tok-observ" in text
    assert SP_TOKEN[:10] not in text
    actions = [b for b in home["blocks"] if b["type"] == "actions"]
    assert len(actions) == 4 and all(b["block_id"].startswith("actions:t") for b in actions)
    assert "Your recent decisions" in text and "None yet" in text


@pytest.fixture
def fresh(tmp_path, monkeypatch, database_url):
    """Right after the first sync: no reminder run has looked anyone up."""
    with served(tmp_path, monkeypatch, database_url, remind=False) as world:
        yield world


def test_an_owner_never_reminded_sees_their_tokens_in_the_home(fresh):
    text = shown(open_home(fresh, OWNER))

    assert "tok-idle" in text and "tok-observ" in text and "no live Databricks tokens" not in text


def test_someone_without_tokens_is_told_so(bot):
    assert "no live Databricks tokens" in shown(open_home(bot, EVE))


def test_an_admin_also_sees_deadlines_by_kind_workspaces_and_tokens_without_an_owner(bot):
    home = open_home(bot, ADMIN)

    text = shown(home)
    assert "For admins" in text and "deadlines in the next 14 days" in text
    fields = {
        f["text"].split("\n")[0]: f["text"].split("\n")[1]
        for b in home["blocks"]
        for f in b.get("fields", [])
    }
    assert fields["*Auto-scoping enforcement*"] == "1" and fields["*Organisation policy*"] == "1"
    assert ":white_check_mark: *dev*" in text and ":white_check_mark: *prod*" in text
    assert "Waiting for an owner* (1)" in text and SP_TOKEN[:10] in text
    pickers = [b for b in home["blocks"] if b.get("block_id", "").startswith("assign:")]
    assert [e["action_id"] for b in pickers for e in b["elements"]] == ["token_assign_owner"]
    assert len(home["blocks"]) <= 100


def test_a_button_on_the_home_tab_decides_and_the_tab_is_redrawn(bot):
    home = open_home(bot, OWNER)
    block_id = element_block(home, "token_accept", "tok-idle")

    response = bot.slack.click_view(
        bot.server.slack_url, OWNER, home["id"], "token_accept", block_id=block_id, mode=bot.server.mode
    )

    assert response.status == 200
    wait_for(lambda: decisions(bot, "accept"), what="the decision")
    [accepted] = decisions(bot, "accept")
    assert (accepted.status, accepted.actor_slack_id) == ("applied", OWNER)
    told = wait_for(lambda: [m for m in bot.slack.messages(OWNER) if "no more reminders" in m["text"]])
    assert told  # the answer comes as a DM: the Home tab has no channel
    redrawn = wait_for_home(bot, OWNER, after=home, containing="Accepted · `tok-idle` in *prod* · done")
    # tokenbot's deadline is settled: tok-idle now shows its next one, Databricks' inactivity rule
    assert "token:t" in shown(redrawn) and "inactivity_revocation" in shown(redrawn)


def test_revoke_from_the_home_tab_removes_the_token_from_it(bot):
    home = open_home(bot, OWNER)
    block_id = element_block(home, "token_revoke", "tok-idle")

    bot.slack.click_view(bot.server.slack_url, OWNER, home["id"], "token_revoke", block_id=block_id, mode=bot.server.mode)

    wait_for(lambda: token(bot, "tok-idle").gone_reason == "revoked", what="the revoke")
    redrawn = wait_for_home(bot, OWNER, after=home, containing="Revoked")
    assert "actions:" + block_id.removeprefix("actions:") not in shown(redrawn)


def test_an_admin_picks_the_owner_from_the_home_tab(bot):
    home = open_home(bot, ADMIN)
    [picker] = [b["block_id"] for b in home["blocks"] if b.get("block_id", "").startswith("assign:")]

    bot.slack.click_view(
        bot.server.slack_url, ADMIN, home["id"], "token_assign_owner", value=REAL, block_id=picker, mode=bot.server.mode
    )

    wait_for(lambda: principal_of(bot, SP_TOKEN).owner_slack_id == REAL, what="the owner")
    redrawn = wait_for_home(bot, ADMIN, after=home, containing="Waiting for an owner* (0)")
    assert "Every token has an owner" in shown(redrawn)


def test_a_token_handed_back_waits_on_the_admins_home(bot):
    home = open_home(bot, OWNER)
    block_id = element_block(home, "token_not_mine", "shared-pro")
    bot.slack.click_view(bot.server.slack_url, OWNER, home["id"], "token_not_mine", block_id=block_id, mode=bot.server.mode)
    wait_for(lambda: decisions(bot, "not_mine"), what="the hand-back")

    admin_home = open_home(bot, ADMIN)

    text = shown(admin_home)
    assert "Waiting for an owner* (2)" in text
    assert f"<@{OWNER}> says it is not theirs" in text


def test_a_workspace_that_failed_to_sync_is_flagged_for_admins(bot):
    bot.org["dev"].down()
    results = bot.server.deps.run_sync()
    assert [r.ok for r in results] == [True, False]

    text = shown(open_home(bot, ADMIN))

    assert ":warning: *dev* · last sync failed" in text


def test_the_home_tab_stays_within_slacks_100_blocks(tmp_path, monkeypatch, database_url):
    with served(tmp_path, monkeypatch, database_url, extra_owner_tokens=60) as world:
        home = open_home(world, OWNER)

    assert 90 < len(home["blocks"]) <= 100
    assert "more with a deadline" in shown(home) and "/tokens mine" in shown(home)
