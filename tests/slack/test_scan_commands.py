"""`/tokens export` and `/tokens risky` scan every token in a worker process
(`bot.services.scans`): the answer is the one the report gives at that moment, and a worker that
dies mid-scan tells the admin so and sends nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot import clock, db
from bot.services import exports, report, windows
from tests.support import scan_jobs
from tests.support.command_helpers import ADMIN, SP_TOKEN, Typist, everything, served


@pytest.fixture
def bot(tmp_path, monkeypatch, database_url, slack_mode):
    with served(tmp_path, monkeypatch, database_url, slack_mode) as world:
        yield Typist(world)


def test_the_exported_file_is_the_csv_report_at_that_moment(bot):
    moment = clock.now() + timedelta(days=3)
    bot.world.server.deps.now = lambda: moment
    policy = bot.world.settings.policy

    body = bot.answer("export")

    [upload] = bot.slack.files()
    with db.session_scope(bot.world.engine) as session:
        views = report.iter_views(session=session, policy=policy, now=moment, order_by=windows.by_id(session))
        expected = "".join(exports.report_csv(views, policy, moment))
    assert upload["content"] == expected.encode()
    assert f"({expected.count(chr(10)) - 1} tokens)" in body["text"]


def test_an_export_whose_worker_dies_tells_the_admin_and_sends_nothing(bot, monkeypatch):
    monkeypatch.setattr(exports, "export_csv", scan_jobs.die)  # the worker really ends mid-scan

    body = bot.answer("export")

    assert "the process writing it ended unexpectedly" in body["text"]
    assert "Nothing was sent; try again" in body["text"]
    assert bot.slack.files() == []


def test_a_risk_scan_whose_worker_dies_tells_the_admin(bot, monkeypatch):
    monkeypatch.setattr(windows, "rank_by_risk", scan_jobs.die)

    body = bot.answer("risky")

    assert "The risk scan stopped before it finished" in body["text"]


def test_risky_after_a_dead_worker_answers_again(bot, monkeypatch):
    with monkeypatch.context() as patched:
        patched.setattr(windows, "rank_by_risk", scan_jobs.die)
        bot.answer("risky")

    shown = everything(bot.answer("risky", user=ADMIN))

    assert SP_TOKEN[:10] in shown and "Can create tokens" in shown
