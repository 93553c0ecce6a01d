"""Hostile requests on the HTTP app: unsigned, wrongly signed, replayed, oversized and malformed
bodies are refused with a 4xx and change nothing; payloads naming other people's or unknown
tokens are refused and recorded; injection-like text is shown as text, never run or broadcast."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import time
import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from bot import db
from bot.models import Decision, SlackRequest
from bot.sandbox.slack import sign
from tests.support.bot_server import running_bot, wait_for
from tests.support.slack_helpers import ADMIN_USER, DIGEST_CHANNEL
from tests.support.world import observed_token

OWNER = "U0ANNA"


@pytest.fixture
def bot(world):
    world.slack.add_user(id=OWNER, email="anna@example.com", name="Anna")
    world.slack.add_user(id="U0MALLORY", email="mallory@example.com", name="Mallory")
    prod = world.org["prod"]
    observed_token(prod, prod.add_user(user_name="anna@example.com"), "tok-anna", 5)
    world.sync()
    world.remind()
    with running_bot(world.settings, world.engine) as server:
        world.server = server
        yield world


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def signed_headers(secret: str, body: str, stamp: float | None = None) -> dict[str, str]:
    timestamp = str(int(stamp if stamp is not None else time.time()))
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": sign(secret, timestamp, body),
            "Content-Type": "application/x-www-form-urlencoded"}


def nothing_changed(bot) -> bool:
    with db.session_scope(bot.engine) as session:
        decisions = session.execute(select(Decision)).scalars().all()
    mutating = [r for r in bot.org["prod"].requests if r.method in ("DELETE", "PATCH", "POST")
                and "/token-management/" in r.path]
    return not decisions and not mutating


def test_unsigned_wrongly_signed_replayed_oversized_and_malformed_requests_are_refused(bot):
    url, secret = bot.server.slack_url, bot.slack.signing_secret
    body = urlencode({"payload": json.dumps({"type": "block_actions", "user": {"id": OWNER}, "actions": []})})

    assert post(url, body.encode(), {"Content-Type": "application/x-www-form-urlencoded"}) == 401
    assert post(url, body.encode(), signed_headers("not-the-secret", body)) == 401
    assert post(url, body.encode(), signed_headers(secret, body, stamp=time.time() - 3600)) == 401
    huge = "payload=" + "a" * (1024 * 1024 + 10)
    assert post(url, huge.encode(), signed_headers(secret, huge)) == 413
    garbled = "payload=%7Bnot json"
    assert post(url, garbled.encode(), signed_headers(secret, garbled)) == 400
    assert post(bot.server.base_url + "/nowhere", b"x", {}) == 404
    time.sleep(0.3)
    assert nothing_changed(bot)


@pytest.mark.parametrize("reference", ["n999999", "t424242", "zzz", "", "n" + "9" * 300, "d1"])
def test_buttons_naming_unknown_tokens_are_refused_and_recorded(bot, reference):
    [message] = bot.slack.messages(OWNER)
    bot.slack.click(bot.server.slack_url, OWNER, message["channel"], message["ts"], "token_revoke",
                    value=reference)
    wait_for(lambda: bot.slack.ephemerals(OWNER), what="the answer")
    with db.session_scope(bot.engine) as session:
        [decision] = session.execute(select(Decision)).scalars().all()
    assert decision.status == "refused"
    assert not [r for r in bot.org["prod"].requests if r.method == "DELETE"]


def test_someone_elses_token_is_refused(bot):
    [message] = bot.slack.messages(OWNER)
    bot.slack.click(bot.server.slack_url, "U0MALLORY", message["channel"], message["ts"], "token_revoke")
    wait_for(lambda: bot.slack.ephemerals("U0MALLORY") or bot.slack.messages("U0MALLORY"), what="the answer")
    with db.session_scope(bot.engine) as session:
        [decision] = session.execute(select(Decision)).scalars().all()
    assert (decision.status, decision.actor_slack_id) == ("refused", "U0MALLORY")
    assert not [r for r in bot.org["prod"].requests if r.method == "DELETE"]


@pytest.mark.parametrize("text", ["show '; DROP TABLE token; --", "show <!channel>", "<!everyone> help",
                                  "revoke <@U0ANNA> <!here>", "mine\x00\x1b[31m"])
def test_injection_like_commands_are_shown_as_text(bot, text):
    response = bot.slack.command(bot.server.slack_url, "U0MALLORY", text)
    assert response.status == 200
    time.sleep(0.3)
    posted = json.dumps(bot.slack.response_url_posts()) + json.dumps(bot.slack.ephemerals("U0MALLORY"))
    assert "<!channel>" not in posted and "<!everyone>" not in posted and "<!here>" not in posted
    with db.session_scope(bot.engine) as session:
        assert session.execute(select(Decision).where(Decision.status != "refused")).first() is None
    for channel in ("C0ADMINS", "C0DIGEST"):
        assert bot.slack.messages(channel) == []


def test_a_timestamp_that_is_not_a_number_and_a_body_that_is_not_utf8_get_4xx_and_one_log_line(bot, caplog):
    url, secret = bot.server.slack_url, bot.slack.signing_secret
    body = "command=%2Ftokens&text=digest&user_id=U0ANNA"
    stamp = str(int(time.time()))
    raw = b"command=%2Ftokens&text=\xff\xfe&user_id=U0ANNA"
    raw_signature = "v0=" + hmac.new(secret.encode(), f"v0:{stamp}:".encode() + raw, hashlib.sha256).hexdigest()
    form = {"Content-Type": "application/x-www-form-urlencoded"}

    with caplog.at_level(logging.WARNING):
        not_a_number = post(url, body.encode(), {**signed_headers(secret, body), "X-Slack-Request-Timestamp": "abc"})
        not_utf8 = post(url, raw, {**form, "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": raw_signature})

    assert (not_a_number, not_utf8) == (401, 400)
    refused = [r for r in caplog.records if r.name == "bot.web"]
    assert len(refused) == 2 and all(r.exc_info is None and r.levelno == logging.WARNING for r in refused)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert nothing_changed(bot)


def digests(bot) -> list[dict]:
    return bot.slack.messages(DIGEST_CHANNEL)


def test_a_slash_command_retried_or_replayed_runs_once(bot):
    url = bot.server.slack_url
    assert bot.slack.command(url, ADMIN_USER, "digest").status == 200
    wait_for(lambda: digests(bot), what="the digest")

    retried = bot.slack.resend_last(retry_num=1)  # Slack: "no answer in 3 s", the same request again
    replayed = bot.slack.resend_last(replay=True)  # the captured request, byte for byte

    assert (retried.status, replayed.status) == (200, 200)
    notes = wait_for(
        lambda: [p for p in bot.slack.response_url_posts() if "already received" in json.dumps(p)][1:],
        what="two notes",
    )
    assert notes
    time.sleep(1)  # whatever a second run would post has had time to appear
    assert len(digests(bot)) == 1
    with db.session_scope(bot.engine) as session:
        [claimed] = session.execute(select(SlackRequest)).scalars().all()
    assert (claimed.kind, claimed.user_id) == ("command:digest", ADMIN_USER)

    assert bot.slack.command(url, ADMIN_USER, "digest").status == 200  # typed again: a new request
    wait_for(lambda: len(digests(bot)) == 2, what="the second digest")


def test_a_replay_to_another_replica_runs_nothing_either(bot):
    assert bot.slack.command(bot.server.slack_url, ADMIN_USER, "digest").status == 200
    wait_for(lambda: digests(bot), what="the digest")

    with running_bot(bot.settings, bot.engine) as other:  # a second replica on the same database
        assert bot.slack.resend_last(replay=True, url=other.slack_url).status == 200
        wait_for(
            lambda: [p for p in bot.slack.response_url_posts() if "already received" in json.dumps(p)],
            what="the note",
        )
    assert len(digests(bot)) == 1


def test_oversized_headers_are_refused(bot):
    body = "payload=%7B%7D"
    headers = {**signed_headers(bot.slack.signing_secret, body), "X-Padding": "a" * (20 * 1024)}
    assert post(bot.server.slack_url, body.encode(), headers) == 431
    assert nothing_changed(bot)


def test_past_the_connection_limit_new_requests_get_503_until_the_idle_ones_are_cut(bot):
    from bot.web import MAX_CONNECTIONS

    host, port = bot.server.base_url.removeprefix("http://").split(":")
    idle = [socket.create_connection((host, int(port)), timeout=30) for _ in range(MAX_CONNECTIONS)]
    try:
        wait_for(lambda: get_status(bot.server.base_url + "/healthz") == 503, timeout=30, what="the limit")
        wait_for(lambda: get_status(bot.server.base_url + "/healthz") == 200, timeout=60, what="idle ones cut")
    finally:
        for sock in idle:
            sock.close()


def get_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
