"""Log redaction: nothing token-shaped or configured as secret reaches a log line."""

from __future__ import annotations

import json
import logging

import pytest

from bot.logs import REDACTED, setup_logging

DATABRICKS_TOKEN = "dapi0123456789abcdef0123456789abcdef"
SLACK_BOT_TOKEN = "xoxb-123456-7890-AbCdEfGhIj"
SLACK_APP_TOKEN = "xapp-1-A0123-4567-abcdef"


@pytest.fixture
def logged(capsys):
    def emit(fmt: str, secrets=(), level="INFO"):
        setup_logging(level, fmt, secrets)
        log = logging.getLogger("tokenbot.test")
        log.info("databricks %s slack %s app %s", DATABRICKS_TOKEN, SLACK_BOT_TOKEN, SLACK_APP_TOKEN)
        log.warning("configured secret is %s", "my-signing-secret")
        try:
            raise RuntimeError(f"failed with {DATABRICKS_TOKEN}-2")
        except RuntimeError:
            log.exception("boom")
        return capsys.readouterr().err

    yield emit
    logging.getLogger().handlers.clear()


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_tokens_and_secrets_are_redacted(logged, fmt):
    output = logged(fmt, secrets=["my-signing-secret"])
    for secret in (DATABRICKS_TOKEN, SLACK_BOT_TOKEN, SLACK_APP_TOKEN, "my-signing-secret"):
        assert secret not in output
    assert output.count(REDACTED) >= 5
    assert "RuntimeError" in output  # the traceback is kept, only the value is gone


def test_json_format_gives_one_object_per_line(logged):
    lines = logged("json").strip().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["level"] for r in records] == ["INFO", "WARNING", "ERROR"]
    assert "exception" in records[2]
    assert {"time", "logger", "message"} <= set(records[0])


def test_ordinary_words_are_not_redacted(logged):
    output = logged("text")
    assert "databricks" in output and "configured secret is my-signing-secret" in output


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_control_characters_in_logged_values_cannot_forge_a_line(capsys, fmt):
    forged = "evt-1\n2026-11-30 06:00:00 ERROR   bot.web: admin login\r\x1b[2J\u2028tail"
    setup_logging("INFO", fmt)
    try:
        logging.getLogger("bot.webhook").info("event %s stored", forged)
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logging.getLogger("bot.webhook").exception("event %s failed", forged)
        output = capsys.readouterr().err
    finally:
        logging.getLogger().handlers.clear()

    lines = output.splitlines()
    assert "\x1b" not in output and "\r" not in output and "\u2028" not in output
    assert not [line for line in lines if line.startswith("2026-11-30 06:00:00 ERROR")]
    if fmt == "text":
        assert lines[0].endswith(r"event evt-1\n2026-11-30 06:00:00 ERROR   bot.web: admin login\r\x1b[2J\u2028tail stored")
        assert "Traceback (most recent call last):" in lines  # a traceback keeps its own lines
    else:
        assert [json.loads(line)["level"] for line in lines] == ["INFO", "ERROR"]
