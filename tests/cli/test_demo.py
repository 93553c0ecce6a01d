"""`tokenbot demo` does every step of its story, in Socket Mode (the default) and in HTTP mode, and
nothing secret leaks while it does: every log line (at DEBUG), every Slack call and every database
table is searched for every token value and secret the demo knows."""

from __future__ import annotations

import io
import json
import logging
import os
import re

import pytest
from rich.console import Console
from sqlalchemy import inspect, text

from bot.logs import setup_logging
from bot.sandbox.demo import Demo, as_shown, delivered, run_demo


@pytest.fixture
def restored_environment():
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.mark.parametrize("http", [False, True], ids=["socket", "http"])
def test_the_demo_does_every_step(tmp_path, restored_environment, http):
    transcript = io.StringIO()
    assert run_demo(Console(file=transcript, width=120), http=http), transcript.getvalue()  # which step
    output = transcript.getvalue()
    assert re.search(r"All (\d+) of \1 steps did what they should", output)
    assert "Used by names Power BI; 1 new-network finding(s) posted, acknowledged" in output
    assert ("really signed HTTP requests" in output) == http
    assert ("HTTP 401, nothing recorded" if http else "HTTP 404, nothing recorded") in output
    digest_panel = output[output.index("#platform-digest") : output.index("chart saved to")]
    assert "TOKENBOT DIGEST" in digest_panel and "[file] Deadlines per day" in digest_panel
    assert "owners got one message each" in output and "{1}" not in output
    assert (tmp_path / "demo-output" / "digest-chart.png").stat().st_size > 1000


def test_no_token_value_or_secret_reaches_logs_slack_or_the_database(tmp_path, capfd, restored_environment):
    console = Console(file=io.StringIO(), width=120)
    with Demo(console, tmp_path) as demo:
        setup_logging("DEBUG", "text", demo.settings.secrets())
        try:
            assert demo.run()
            secrets = set(demo.settings.secrets())
            secrets |= {demo.prod.admin_token, demo.analytics.admin_token, demo.slack.bot_token,
                        demo.slack.signing_secret, demo.slack.app_token}
            secrets |= {str(value) for value in demo.prod.secrets().values()}  # the rotated token's value
            slack_calls = json.dumps([call["args"] for call in demo.slack.calls()], default=str)
            slack_calls += json.dumps(demo.slack.response_url_posts(), default=str)
            with demo.engine.connect() as connection:
                tables = "".join(
                    str(connection.execute(text(f'SELECT * FROM "{table}"')).all())  # noqa: S608
                    for table in inspect(demo.engine).get_table_names())
        finally:
            logging.getLogger().handlers.clear()
    logs = capfd.readouterr().err
    assert len(logs.splitlines()) > 100  # DEBUG really was on
    for secret in secrets:
        assert secret not in logs, "a secret reached the logs"
        assert secret not in slack_calls, "a secret reached Slack"
        assert secret not in tables, "a secret reached the database"


def test_the_transcript_shows_a_message_as_slack_would():
    digest = {"text": "fallback", "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "Digest"}},
                                              {"type": "section", "text": {"type": "mrkdwn", "text": "a &lt;b&gt;"}}]}
    chart = {"text": "", "files": [{"name": "chart.png", "title": "Deadlines"}]}

    assert as_shown(digest) == "DIGEST\n\na <b>\n"
    assert as_shown(chart) == "[file] Deadlines (chart.png)\n"
    assert as_shown({"text": "just text &amp; more"}) == "just text & more\n"


def test_the_verdict_counts_messages_in_words():
    assert delivered({"Ada": 1, "Bob": 1}) == "2 owners got one message each"
    assert delivered({"Ada": 1, "Bob": 2}) == "owners got Ada: 1, Bob: 2"
    assert delivered({}) == "no owner got a message"
