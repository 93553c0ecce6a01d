"""`tokenbot doctor` against the sandboxes: Slack (auth, the granted scopes against manifest.yml,
the channels and the bot's membership) and each workspace (reachable, token management allowed,
SCIM readable), on a good setup and on broken ones, each failure saying what to fix."""

from __future__ import annotations

from typer.testing import CliRunner

from bot.cli.doctor import live_checks, manifest_scopes
from bot.cli.main import app
from bot.config import load_settings
from bot.sandbox.slack.limits import MANIFEST_SCOPES
from bot.slack.client import make_client
from bot.slack.health import doctor_checks
from tests.support.slack_helpers import ADMIN_CHANNEL, DIGEST_CHANNEL

runner = CliRunner()


def checks() -> dict[str, tuple[bool | None, str]]:
    return {name: (ok, detail) for name, ok, detail in live_checks(load_settings())}


def doctor(**env: str):
    return runner.invoke(app, ["doctor"], env={"COLUMNS": "400", **env}, catch_exceptions=False)


def test_the_manifest_is_read_from_the_repository_root():
    assert set(manifest_scopes()) == set(MANIFEST_SCOPES)


def test_a_good_setup_passes_every_live_check(world):
    found = checks()

    assert found["slack auth"] == (True, "bot tokenbot (U0SANDBOT) in workspace Sandbox")
    ok, detail = found["slack scopes"]
    assert (ok, detail) == (True, "all 9 scopes of manifest.yml granted")
    assert found["slack admin channel"] == (True, f"#tokenbot-admins ({ADMIN_CHANNEL}), the bot is a member")
    assert found["slack digest channel"] == (
        True,
        f"#tokenbot-digest ({DIGEST_CHANNEL}), the bot is a member",
    )
    for workspace in ("prod", "dev"):
        ok, detail = found[f"workspace {workspace}"]
        assert ok and detail.endswith("reachable, token management, SCIM ok")
    result = doctor()
    assert result.exit_code == 0, result.output
    assert "│ fix " not in result.output


def test_a_refused_bot_token_is_reported_with_what_to_do(world):
    world.slack.bot_token = "xoxb-rotated"

    found = checks()

    ok, detail = found["slack auth"]
    assert ok is False and "Slack refuses SLACK_BOT_TOKEN (invalid_auth)" in detail
    assert "reinstall the app" in detail
    assert "slack scopes" not in found  # nothing more to learn from a refused token


def test_missing_scopes_and_channel_problems_each_say_what_to_fix(world):
    world.slack.scopes = [
        scope for scope in world.slack.scopes if scope not in ("files:write", "usergroups:read")
    ]
    world.slack.add_channel(id=DIGEST_CHANNEL, name="tokenbot-digest", bot_member=False)
    config = world.org.config_path
    config.write_text(
        config.read_text().replace(f'admin_channel = "{ADMIN_CHANNEL}"', 'admin_channel = "C0GONE"')
    )

    found = checks()

    assert found["slack scopes"] == (
        False,
        "the bot lacks files:write, usergroups:read: add them under OAuth & Permissions (as in manifest.yml) "
        "and reinstall the app",
    )
    ok, detail = found["slack admin channel"]
    assert (
        ok is False
        and "C0GONE does not exist" in detail
        and "(slack.admin_channel) and invite the bot" in detail
    )
    assert found["slack digest channel"] == (
        False,
        f"the bot is not in #tokenbot-digest ({DIGEST_CHANNEL}): type `/invite @tokenbot` there",
    )
    result = doctor()
    assert result.exit_code == 2
    assert "usergroups:read" in result.output and "/invite @tokenbot" in result.output


def test_workspace_problems_name_the_workspace_and_the_fix(world, monkeypatch):
    prod, dev = world.org["prod"], world.org["dev"]
    prod.add_non_admin_token("dapi-not-an-admin")
    monkeypatch.setenv("PROD_DATABRICKS_TOKEN", "dapi-not-an-admin")
    dev.fail("GET", r"/api/2\.0/preview/scim/v2/Users$", 403)

    found = checks()

    ok, detail = found["workspace prod: token management"]
    assert ok is False and "permission denied" in detail and "must be a workspace admin" in detail
    assert "workspace prod: SCIM" not in found  # a non-admin may read SCIM
    ok, detail = found["workspace dev: SCIM"]
    assert ok is False and "read users (SCIM): permission denied" in detail


def test_a_refused_credential_says_to_check_the_credentials_not_to_be_an_admin(world, monkeypatch):
    monkeypatch.setenv("PROD_DATABRICKS_TOKEN", "dapi-revoked-long-ago")

    found = checks()

    ok, detail = found["workspace prod: credentials"]
    assert ok is False and "authentication failed (Invalid access token." in detail
    assert "check the workspace's credentials" in detail and "admin" not in detail
    assert "dapi-revoked-long-ago" not in detail
    assert found["workspace dev"][0] is True


def test_an_unreachable_workspace_is_reported_after_a_bounded_wait(world):
    config = world.org.config_path
    config.write_text(config.read_text().replace("retry_timeout_seconds = 3", "retry_timeout_seconds = 1"))
    world.org["dev"].down()  # every connection dropped

    ok, detail = checks()["workspace dev: reachable"]

    assert ok is False and "reach the workspace" in detail and "check the host and the network" in detail


def test_unset_credentials_are_reported_without_calling_anything(world, monkeypatch):
    monkeypatch.delenv("PROD_DATABRICKS_TOKEN")

    ok, detail = checks()["workspace prod"]

    assert ok is False
    assert detail == "environment variable PROD_DATABRICKS_TOKEN (workspaces.token_env of 'prod') is not set"


def test_without_the_manifest_the_scopes_are_not_compared_and_doctor_says_so(world):
    found = doctor_checks(make_client(world.settings), manifest_scopes=None, channels={})

    [(name, ok, detail)] = [check for check in found if check[0] == "slack scopes"]
    assert ok is None and detail.startswith("manifest.yml is not next to the installed package")
