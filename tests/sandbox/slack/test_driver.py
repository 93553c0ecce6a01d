"""The driver (driver.py): Slack's signed commands, clicks, submissions and Home tab opens as a
throwaway HTTP endpoint receives them, checked with slack_sdk's own `SignatureVerifier`."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs

import pytest
from slack_sdk import WebClient
from slack_sdk.models.blocks import DividerBlock
from slack_sdk.models.views import View
from slack_sdk.signature import SignatureVerifier

from bot.sandbox.server import Request, Response
from bot.sandbox.slack import SlackSandbox
from tests.support.slack_sandbox import ALICE, Receiver, approval_blocks, open_modal_from_click


@pytest.mark.parametrize("kind", ["command", "click", "submit", "home_opened"])
def test_driver_requests_verify_and_tampered_ones_do_not(slack, client, receiver, kind):
    view_id = open_modal_from_click(slack, client, receiver)
    posted = client.chat_postMessage(channel=ALICE, text="t", blocks=approval_blocks())
    drive = {
        "command": lambda: slack.command(receiver.url, ALICE, "list"),
        "click": lambda: slack.click(receiver.url, ALICE, posted["channel"], posted["ts"], "revoke"),
        "submit": lambda: slack.submit(receiver.url, ALICE, view_id, {}),
        "home_opened": lambda: slack.home_opened(receiver.url, ALICE),
    }
    drive[kind]()

    verifier = SignatureVerifier(slack.signing_secret)
    assert verifier.is_valid_request(receiver.last.body, receiver.last.headers)
    assert not verifier.is_valid_request(receiver.last.body + b"&text=tampered", receiver.last.headers)


def test_bad_signature_old_timestamp_and_retry_headers(slack: SlackSandbox, receiver: Receiver):
    verifier = SignatureVerifier(slack.signing_secret)

    slack.command(receiver.url, ALICE, "list", bad_signature=True)
    assert not verifier.is_valid_request(receiver.last.body, receiver.last.headers)

    stale = time.time() - 600
    slack.command(receiver.url, ALICE, "list", timestamp=stale)
    assert receiver.last.header("x-slack-request-timestamp") == str(int(stale))
    assert not verifier.is_valid_request(receiver.last.body, receiver.last.headers)

    slack.home_opened(receiver.url, ALICE, retry_num=2)
    assert receiver.last.header("x-slack-retry-num") == "2"
    assert receiver.last.header("x-slack-retry-reason") == "http_timeout"
    assert verifier.is_valid_request(receiver.last.body, receiver.last.headers)


def test_the_driver_reports_status_body_and_time_to_response(slack: SlackSandbox, receiver: Receiver):
    def slow_answer(request: Request) -> Response:
        time.sleep(0.2)
        return Response(200, {"response_action": "errors"})

    receiver.answer = slow_answer
    answer = slack.command(receiver.url, ALICE, "list")
    assert (answer.status, answer.json()) == (200, {"response_action": "errors"})
    assert answer.elapsed >= 0.2


def test_a_slash_command_carries_slacks_form_fields(slack: SlackSandbox, receiver: Receiver):
    slack.command(receiver.url, ALICE, "extend abc 30")

    form = {k: v[0] for k, v in parse_qs(receiver.last.body.decode()).items()}
    assert receiver.last.header("content-type") == "application/x-www-form-urlencoded"
    assert (form["command"], form["text"], form["user_id"]) == ("/tokens", "extend abc 30", ALICE)
    assert form["channel_id"] == slack.dm_channel(ALICE)
    assert form["team_id"] == slack.team_id
    assert form["response_url"].startswith(f"{slack.base_url}/response/")
    assert form["trigger_id"]


def test_a_click_takes_the_button_value_from_the_recorded_message(slack, client, receiver):
    posted = client.chat_postMessage(channel=ALICE, text="Token abc", blocks=approval_blocks())

    slack.click(receiver.url, ALICE, ALICE, posted["ts"], "extend")

    payload = receiver.last_payload()
    [action] = payload["actions"]
    assert payload["type"] == "block_actions"
    assert (action["action_id"], action["block_id"], action["value"]) == ("extend", "token-actions", "abc:30")
    assert payload["container"] == {
        "type": "message",
        "message_ts": posted["ts"],
        "channel_id": posted["channel"],
        "is_ephemeral": False,
    }
    assert payload["message"]["ts"] == posted["ts"]
    assert payload["user"]["id"] == ALICE
    assert payload["response_url"].startswith(f"{slack.base_url}/response/")
    with pytest.raises(LookupError):
        slack.click(receiver.url, ALICE, ALICE, posted["ts"], "no-such-action")


def test_a_submission_carries_slacks_state_shape(slack, client, receiver):
    view_id = open_modal_from_click(slack, client, receiver)

    slack.submit(
        receiver.url, ALICE, view_id, {"scopes": {"pick": ["sql", "jobs"]}, "reason": {"text": "ETL"}}
    )

    view = receiver.last_payload()["view"]
    values = view["state"]["values"]
    assert receiver.last_payload()["type"] == "view_submission"
    assert (view["callback_id"], view["private_metadata"]) == ("scopes", "token=abc")
    assert values["reason"]["text"] == {"type": "plain_text_input", "value": "ETL"}
    picked = values["scopes"]["pick"]
    assert picked["type"] == "multi_static_select"
    assert [o["value"] for o in picked["selected_options"]] == ["sql", "jobs"]
    assert picked["selected_options"][0]["text"]["text"] == "SQL"
    with pytest.raises(ValueError):
        slack.submit(receiver.url, ALICE, view_id, {"scopes": {"pick": ["nope"]}})


def test_a_submission_answer_decides_what_happens_to_the_modal(slack, client, receiver):
    view_id = open_modal_from_click(slack, client, receiver)

    receiver.answer = lambda request: Response(
        200, {"response_action": "errors", "errors": {"reason": "Say why"}}
    )
    slack.submit(receiver.url, ALICE, view_id, {"reason": {"text": ""}})
    assert [v["id"] for v in slack.views(ALICE, open_only=True)] == [view_id]

    receiver.answer = lambda request: Response(200, b"")
    slack.submit(receiver.url, ALICE, view_id, {"reason": {"text": "ETL"}})
    assert slack.views(ALICE, open_only=True) == []


def test_response_url_posts_are_recorded_and_act_on_the_message(slack, client, receiver):
    posted = client.chat_postMessage(channel=ALICE, text="Token abc", blocks=approval_blocks())
    slack.click(receiver.url, ALICE, ALICE, posted["ts"], "revoke")
    response_url = receiver.last_payload()["response_url"]

    from slack_sdk.webhook import WebhookClient

    WebhookClient(response_url).send(text="Revoked", replace_original=True)

    [post] = slack.response_url_posts()
    assert post["body"] == {"text": "Revoked", "replace_original": True}
    [message] = slack.messages(ALICE)
    assert (message["text"], message["blocks"]) == ("Revoked", [])


def test_a_home_tab_click_names_the_view_as_its_container(slack, client, receiver):
    home = client.views_publish(user_id=ALICE, view=View(type="home", blocks=approval_blocks()))["view"]

    slack.click_view(receiver.url, ALICE, home["id"], "revoke")

    payload = receiver.last_payload()
    assert payload["container"] == {"type": "view", "view_id": home["id"]}
    assert payload["actions"][0]["value"] == "abc"
    assert payload["view"]["type"] == "home"


def test_home_opened_is_an_event_callback(slack: SlackSandbox, client: WebClient, receiver: Receiver):
    client.views_publish(user_id=ALICE, view=View(type="home", blocks=[DividerBlock()]))

    slack.home_opened(receiver.url, ALICE)

    envelope = json.loads(receiver.last.body)
    assert receiver.last.header("content-type") == "application/json"
    assert envelope["type"] == "event_callback"
    assert envelope["event"]["type"] == "app_home_opened"
    assert (envelope["event"]["user"], envelope["event"]["tab"]) == (ALICE, "home")
    assert envelope["event"]["view"]["type"] == "home"
