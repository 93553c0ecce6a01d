"""`tokenbot rotations [--dry-run] [--json]`: the hourly `rotations` job, once, from the command
line: a rotated service principal's old token is revoked (a real DELETE to the sandbox) once its
grace period has passed, and not before."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from freezegun import freeze_time
from typer.testing import CliRunner

from bot.cli.main import app
from bot.domain.deadlines import DeadlineKind
from tests.support.decisions_helpers import OPS, deletes_of, extend, make_world

runner = CliRunner()


@pytest.fixture
def rotated(tmp_path, monkeypatch, database_url):
    """t-etl was rotated into its secret: the old token waits for `rotation_grace_hours` (24)."""
    with make_world(tmp_path, monkeypatch, database_url) as world:
        rotation = extend(world, OPS, "t-etl", DeadlineKind.EXPIRY)
        assert rotation.status == "applied", rotation.message
        world.grace_end = datetime.fromisoformat(rotation.parameters["revoke_old_after"])
        world.new_token = rotation.parameters["new_token_id"]
        yield world


def test_before_the_grace_period_ends_nothing_is_revoked(rotated):
    with freeze_time(rotated.grace_end - timedelta(minutes=5)):
        result = runner.invoke(app, ["rotations"])

    assert result.exit_code == 0, result.output
    assert "0 rotation(s) past their grace period" in result.output
    assert deletes_of(rotated.prod, "t-etl") == []


def test_rotations_revokes_the_old_token_after_its_grace_period_once(rotated):
    with freeze_time(rotated.grace_end + timedelta(minutes=1)):
        result = runner.invoke(app, ["rotations"])
        again = runner.invoke(app, ["rotations", "--json"])

    assert result.exit_code == 0, result.output
    assert "prod/t-etl: revoked" in result.output and "1 old token(s) revoked, 0 failed" in result.output
    assert len(deletes_of(rotated.prod, "t-etl")) == 1
    assert {t["token_id"] for t in rotated.prod.tokens()} == {"t-alice", rotated.new_token}
    [decision] = rotated.decisions(action="revoke")
    assert (decision.status, decision.actor_role) == ("applied", "tokenbot")
    assert again.exit_code == 0 and json.loads(again.stdout) == []


def test_dry_run_says_what_it_would_revoke_and_changes_nothing(rotated):
    with freeze_time(rotated.grace_end + timedelta(minutes=1)):
        result = runner.invoke(app, ["rotations", "--dry-run", "--json"])

    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    assert (row["workspace"], row["token_id"], row["result"]) == ("prod", "t-etl", "would_revoke")
    assert deletes_of(rotated.prod, "t-etl") == [] and rotated.decisions(action="revoke") == []


def test_a_failed_revocation_exits_1_and_is_tried_again(rotated):
    rotated.prod.fail("DELETE", r"/api/2\.0/token-management/tokens/t-etl$", 500, times=20)
    with freeze_time(rotated.grace_end + timedelta(minutes=1)):
        result = runner.invoke(app, ["rotations"])

    assert result.exit_code == 1, result.output
    assert "prod/t-etl: failed" in result.output
