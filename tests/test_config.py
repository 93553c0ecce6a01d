"""Settings: defaults, environment, the TOML file, and one clear line per invalid value."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from bot.config import DEFAULT_DATABASE_URL, ConfigError, PolicyConfig, load_settings
from bot.domain.policy import Policy


def write_config(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "tokenbot.toml"
    path.write_text(text)
    return {"TOKENBOT_CONFIG": str(path)}


def problems_for(environ: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    return caught.value.problems


FULL_CONFIG = """
[[workspaces]]
name = "prod"
host = "https://adb-1234.5.azuredatabricks.net/"
profile = "prod"
audit_warehouse_id = "abc123"

[[workspaces]]
name = "dev"
host = "https://adb-99.9.azuredatabricks.net"
token_env = "DEV_DATABRICKS_TOKEN"

[policy]
reminder_days = [3, 14, 7]
org_max_inactive_days = 0
quiet_hours = "20:00-08:00"
junk_comment_patterns = ["scratch"]
autoscope_rollout_date = 2026-06-15
enforce = true

[slack]
admins = ["U012ABC"]
admin_channel = "C012ADMIN"
digest_channel = "C012DIGEST"
digest_cron = "30 8 * * mon"

[databricks]
retry_timeout_seconds = 20

[[secret_bindings]]
workspace = "prod"
application_id = "9f0c-app"
scope = "etl"
key = "databricks-token"
"""


def test_defaults_without_file_or_environment():
    settings = load_settings({})
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.workspaces == ()
    assert settings.dry_run is False
    assert settings.slack_bot_token is None
    assert settings.policy == Policy()
    assert settings.slack.digest_cron == "0 9 * * mon-fri"
    assert settings.databricks.retry_timeout_seconds == 60


def test_policy_config_mirrors_the_domain_policy():
    assert set(PolicyConfig.model_fields) == set(Policy.__dataclass_fields__)
    assert PolicyConfig().to_policy() == Policy()


def test_environment_values_are_read():
    settings = load_settings(
        {
            "TOKENBOT_DATABASE_URL": "postgresql://db/tokenbot",
            "SLACK_BOT_TOKEN": "xoxb-1-2-abc",
            "SLACK_SIGNING_SECRET": "s3cret-signing",
            "TOKENBOT_DRY_RUN": "1",
            "TOKENBOT_LOG_FORMAT": "json",
            "TOKENBOT_LOG_LEVEL": "debug",
            "TOKENBOT_SLACK_API_URL": "http://127.0.0.1:9999/api",
        }
    )
    assert settings.database_url == "postgresql://db/tokenbot"
    assert settings.slack_bot_token.get_secret_value() == "xoxb-1-2-abc"
    assert settings.dry_run is True
    assert settings.log_format == "json"
    assert settings.log_level == "DEBUG"
    assert settings.slack_api_url == "http://127.0.0.1:9999/api/"


def test_the_file_is_read(tmp_path):
    settings = load_settings(write_config(tmp_path, FULL_CONFIG))
    prod, dev = settings.workspaces
    assert (prod.name, prod.host, prod.profile, prod.audit_warehouse_id) == (
        "prod",
        "https://adb-1234.5.azuredatabricks.net",
        "prod",
        "abc123",
    )
    assert dev.token_env == "DEV_DATABRICKS_TOKEN"
    assert settings.policy.reminder_days == (14, 7, 3)
    assert settings.policy.org_max_inactive_days == 0
    assert settings.policy.autoscope_rollout_date == date(2026, 6, 15)
    assert settings.policy.enforce is True
    assert settings.slack.admins == ["U012ABC"]
    assert settings.databricks.retry_timeout_seconds == 20
    assert settings.secret_bindings[0].key == "databricks-token"


def test_default_file_in_the_working_directory_is_used(tmp_path):
    (tmp_path / "tokenbot.toml").write_text('[slack]\nadmin_channel = "C0ADMIN"\n')
    assert load_settings({}).slack.admin_channel == "C0ADMIN"


def test_a_single_workspace_can_come_from_databricks_host_alone():
    settings = load_settings({"DATABRICKS_HOST": "https://adb-1.1.azuredatabricks.net"})
    assert [(w.name, w.host) for w in settings.workspaces] == [
        ("default", "https://adb-1.1.azuredatabricks.net")
    ]


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            "[policy]\nreminder_days = [14, -1]",
            "policy.reminder_days[1]: Input should be greater than or equal to 1 (got -1)",
        ),
        ("[policy]\nreminder_days = [7, 7]", "policy.reminder_days: days must not repeat (got [7, 7])"),
        ("[policy]\nreminder_days = []", "policy.reminder_days: List should have at least 1 item"),
        ('[policy]\nreminder_days = "14"', "policy.reminder_days: Input should be a valid list (got '14')"),
        (
            "[policy]\norg_max_inactive_days = -5",
            "policy.org_max_inactive_days: Input should be greater than or equal to 0 (got -5)",
        ),
        ('[policy]\nquiet_hours = "late"', "policy.quiet_hours:"),
        (
            "[policy]\nmax_gone_fraction = 1.5",
            "policy.max_gone_fraction: Input should be less than or equal to 1 (got 1.5)",
        ),
        ('[policy]\nenforce = "yes"', "policy.enforce: Input should be a valid boolean (got 'yes')"),
        ("[policy]\nreminder_dayz = [1]", "policy.reminder_dayz: unknown key"),
        ('[slack]\nadmins = ["bob"]', "slack.admins[0]: String should match pattern"),
        ('[slack]\nadmin_channel = "#admins"', "slack.admin_channel: String should match pattern"),
        (
            '[slack]\ndigest_cron = "every morning"',
            "slack.digest_cron: must be a crontab line of five fields",
        ),
        ('[slack]\ndigest_timezone = "Mars/Base"', "slack.digest_timezone: must be an IANA time zone"),
        (
            "[databricks]\nmax_parallel_workspaces = 0",
            "databricks.max_parallel_workspaces: Input should be greater than or equal to 1 (got 0)",
        ),
        ('[[workspaces]]\nname = "prod"', "workspaces[0].host: is required"),
        (
            '[[workspaces]]\nname = "prod"\nhost = "adb-1.azuredatabricks.net"',
            "workspaces[0].host: must be the workspace URL",
        ),
        (
            '[[workspaces]]\nname = "bad name"\nhost = "https://x"',
            "workspaces[0].name: String should match pattern",
        ),
        (
            '[[workspaces]]\nname = "a"\nhost = "https://x"\n[[workspaces]]\nname = "a"\nhost = "https://y"',
            "workspaces: workspace names must be unique; repeated: a",
        ),
        (
            '[[secret_bindings]]\nworkspace = "a"\nscope = "s"\nkey = "k"',
            "secret_bindings[0]: needs application_id or comment_pattern",
        ),
        (
            '[[secret_bindings]]\nworkspace = "a"\napplication_id = "x"\nscope = "s"\nkey = "bad key!"',
            "secret_bindings[0].key: String should match pattern",
        ),
        (
            "[sync]\nx = 1",
            "sync: unknown section; allowed: workspaces, policy, slack, databricks, secret_bindings",
        ),
        ("[policy\nx = 1", "not valid TOML"),
    ],
)
def test_each_invalid_value_gives_one_line_naming_key_value_and_what_is_allowed(tmp_path, toml, expected):
    problems = problems_for(write_config(tmp_path, toml))
    assert len(problems) == 1, problems
    assert expected in problems[0]
    assert problems[0].startswith(str(tmp_path / "tokenbot.toml"))


def test_several_problems_are_all_reported(tmp_path):
    environ = write_config(tmp_path, "[policy]\nreminder_days = [0]\nescalate_after_days = -1\n")
    environ["TOKENBOT_LOG_FORMAT"] = "xml"
    problems = problems_for(environ)
    assert len(problems) == 3
    assert any(
        p.startswith("environment: TOKENBOT_LOG_FORMAT: Input should be 'text' or 'json'") for p in problems
    )


def test_bad_environment_values_are_named():
    assert problems_for({"TOKENBOT_DRY_RUN": "maybe"}) == [
        "environment: TOKENBOT_DRY_RUN: Input should be a valid boolean, unable to interpret input (got 'maybe')"
    ]
    assert (
        "environment: TOKENBOT_SLACK_API_URL: must be an http(s) URL"
        in problems_for({"TOKENBOT_SLACK_API_URL": "slack.com"})[0]
    )


def test_missing_config_file_named_by_the_environment():
    assert problems_for({"TOKENBOT_CONFIG": "/nowhere/tokenbot.toml"}) == [
        "TOKENBOT_CONFIG: file not found: /nowhere/tokenbot.toml (create it, or unset TOKENBOT_CONFIG)"
    ]


def test_secrets_never_show_in_repr_or_dump():
    settings = load_settings(
        {
            "SLACK_BOT_TOKEN": "xoxb-very-secret-token",
            "SLACK_SIGNING_SECRET": "signing-secret-value",
            "SLACK_APP_TOKEN": "xapp-1-secret",
            "TOKENBOT_WEBHOOK_SECRET": "webhook-secret-value",
        }
    )
    shown = repr(settings) + str(settings) + str(settings.model_dump())
    for secret in ("xoxb-very-secret-token", "signing-secret-value", "xapp-1-secret", "webhook-secret-value"):
        assert secret not in shown
    assert sorted(settings.secrets()) == sorted(
        ["xoxb-very-secret-token", "signing-secret-value", "xapp-1-secret", "webhook-secret-value"]
    )


def test_settings_are_immutable():
    settings = load_settings({})
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error type is an implementation detail
        settings.dry_run = True


def test_the_trust_limits_have_defaults_and_can_be_set(tmp_path):
    assert (Policy().max_total_extension_days, Policy().request_hold_days) == (60, 3)
    environ = write_config(tmp_path, "[policy]\nmax_total_extension_days = 90\nrequest_hold_days = 1\n")

    policy = load_settings(environ).policy

    assert (policy.max_total_extension_days, policy.request_hold_days) == (90, 1)


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            "[policy]\nmax_total_extension_days = 10",
            "policy: max_total_extension_days (10) must be at least max_extension_days (30)",
        ),
        (
            "[policy]\nrequest_hold_days = -1",
            "policy.request_hold_days: Input should be greater than or equal to 0 (got -1)",
        ),
    ],
)
def test_bad_trust_limits_are_named(tmp_path, toml, expected):
    [problem] = problems_for(write_config(tmp_path, toml))
    assert expected in problem
