"""The command line as a new user meets it: help, version, doctor, db upgrade, bad configuration."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from bot import __version__
from bot.cli.main import app

runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, list(args), env=env)


def test_help_lists_the_commands():
    result = run("--help")
    assert result.exit_code == 0
    assert "doctor" in result.output and "db" in result.output


def test_every_command_has_help_text():
    for args in (["doctor", "--help"], ["db", "--help"], ["db", "upgrade", "--help"]):
        result = run(*args)
        assert result.exit_code == 0, args
        assert len(result.output.strip().splitlines()) > 3


def test_version():
    result = run("--version")
    assert result.exit_code == 0
    assert result.output.strip() == f"tokenbot {__version__}"


def test_python_dash_m_bot_runs_the_same_cli():
    result = subprocess.run(
        [sys.executable, "-m", "bot", "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"tokenbot {__version__}"


def test_db_upgrade_twice(database_url):
    env = {"TOKENBOT_DATABASE_URL": database_url}
    first = run("db", "upgrade", env=env)
    assert first.exit_code == 0, first.output
    assert "Applied migrations" in first.output
    second = run("db", "upgrade", env=env)
    assert second.exit_code == 0
    assert "up to date" in second.output


def test_bad_configuration_exits_2_with_one_line_per_problem_and_no_traceback(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[policy]\nreminder_days = [0]\n[slack]\nadmin_channel = "#ops"\n')
    result = run("db", "upgrade", env={"TOKENBOT_CONFIG": str(config)})
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 2
    assert all(line.startswith("error: ") for line in lines)
    assert "policy.reminder_days[0]" in result.output and "slack.admin_channel" in result.output
    assert "Traceback" not in result.output


def test_unreachable_database_is_a_clear_error():
    result = run("db", "upgrade", env={"TOKENBOT_DATABASE_URL": "postgresql://nobody:pw@127.0.0.1:1/none"})
    assert result.exit_code == 1
    assert result.output.startswith("error: database postgresql+psycopg://nobody:***@127.0.0.1:1/none")
    assert "Traceback" not in result.output


def test_doctor_says_what_to_fix_and_exits_2(tmp_path):
    result = run("doctor", env={"TOKENBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}"})
    assert result.exit_code == 2
    # The table folds long details onto continuation rows (a long temporary path moves the fold).
    text = " ".join(result.output.replace("│", " ").split())
    for advice in ("DATABRICKS_HOST", "SLACK_BOT_TOKEN", "slack.admins", "tokenbot db upgrade"):
        assert advice in text


@pytest.fixture
def good_setup(tmp_path, database_url):
    config = tmp_path / "tokenbot.toml"
    config.write_text(
        '[[workspaces]]\nname = "prod"\nhost = "https://adb-1.azuredatabricks.net"\n'
        '[slack]\nadmins = ["U0ADMIN"]\nadmin_channel = "C0ADMIN"\n'
    )
    return {
        "TOKENBOT_CONFIG": str(config),
        "TOKENBOT_DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": "xoxb-doctor-test-token",
        "SLACK_APP_TOKEN": "xapp-doctor-test-token",
    }


def test_doctor_passes_on_a_good_migrated_setup(good_setup):
    assert run("db", "upgrade", env=good_setup).exit_code == 0
    result = run("doctor", "--offline", env=good_setup)  # the live checks: tests/cli/test_doctor_live.py
    assert result.exit_code == 0, result.output
    assert "│ fix " not in result.output
    assert "xoxb-doctor-test-token" not in result.output


def test_doctor_reports_bad_configuration_as_rows(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[policy]\nquiet_hours = "25:00-09:00"\n')
    result = run("doctor", env={"TOKENBOT_CONFIG": str(config)})
    assert result.exit_code == 2
    assert "policy.quiet_hours" in result.output
