"""manifest.yml matches the code: every slash command and event the manifest subscribes to is
handled by the bolt app, and the app handles nothing the manifest does not declare; action ids
and view callbacks (which manifests do not list) each have their listener, per `bot/slack/ids.py`.

The bolt app is the real one (`build_app`), matched against payloads of each kind with bolt's own
listener matchers: nothing is dispatched and no handler runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from slack_bolt import App, BoltRequest, BoltResponse
from sqlalchemy import create_engine

from bot.config import load_settings
from bot.sandbox.slack import SlackSandbox
from bot.slack import ids
from bot.slack.app import build_app
from bot.slack.client import make_client
from bot.wiring import make_deps

MANIFEST = Path(__file__).parents[2] / "manifest.yml"


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return yaml.safe_load(MANIFEST.read_text())


@pytest.fixture(scope="module")
def bolt() -> App:
    with SlackSandbox() as slack:  # build_app calls auth.test
        settings = load_settings(
            {"SLACK_BOT_TOKEN": slack.bot_token, "TOKENBOT_SLACK_API_URL": slack.url, "TOKENBOT_CONFIG": ""}
        )
        client = make_client(settings)
        engine = create_engine("sqlite://")
        yield build_app(settings, make_deps(settings, engine, client), client, socket_mode=True)
        engine.dispose()


def manifest_commands(manifest) -> set[str]:
    return {command["command"] for command in manifest["features"]["slash_commands"]}


def manifest_events(manifest) -> set[str]:
    return set(manifest["settings"]["event_subscriptions"]["bot_events"])


def command_body(command: str) -> dict[str, Any]:
    return {"command": command, "text": "", "user_id": "U1", "channel_id": "D1", "team_id": "T1"}


def event_body(event_type: str) -> dict[str, Any]:
    return {"type": "event_callback", "team_id": "T1", "event": {"type": event_type, "user": "U1"}}


def action_body(action_id: str) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "user": {"id": "U1"},
        "team": {"id": "T1"},
        "actions": [{"action_id": action_id, "block_id": "b", "type": "button", "value": "v"}],
    }


def view_body(callback_id: str) -> dict[str, Any]:
    return {
        "type": "view_submission",
        "user": {"id": "U1"},
        "team": {"id": "T1"},
        "view": {"type": "modal", "callback_id": str(callback_id), "state": {"values": {}}},
    }


def handlers_of(bolt: App, body: dict[str, Any]) -> list:
    request = BoltRequest(body=body, mode="socket_mode")
    return [
        listener
        for listener in bolt._listeners
        if listener.matches(req=request, resp=BoltResponse(status=200))
    ]


def declared(manifest) -> list[dict[str, Any]]:
    """Every payload the manifest and ids.py say tokenbot handles."""
    return (
        [command_body(c) for c in manifest_commands(manifest)]
        + [event_body(e) for e in manifest_events(manifest)]
        + [action_body(a) for a in ids.Action]
        + [view_body(v) for v in ids.View]
    )


# ---------------------------------------------------------------------------------------------


def test_every_command_in_the_manifest_has_exactly_one_listener(bolt, manifest):
    assert manifest_commands(manifest) == {ids.COMMAND}
    for command in manifest_commands(manifest):
        assert len(handlers_of(bolt, command_body(command))) == 1, command


def test_every_event_in_the_manifest_has_exactly_one_listener_and_ids_list_the_same(bolt, manifest):
    assert manifest_events(manifest) == {str(event) for event in ids.Event}
    for event in manifest_events(manifest):
        assert len(handlers_of(bolt, event_body(event))) == 1, event


def test_every_action_id_and_view_callback_has_exactly_one_listener(bolt):
    missing = [a for a in ids.Action if not handlers_of(bolt, action_body(a))]
    missing += [v for v in ids.View if not handlers_of(bolt, view_body(v))]
    assert missing == []
    doubled = [a for a in ids.Action if len(handlers_of(bolt, action_body(a))) > 1]
    assert doubled == []


def test_the_app_handles_nothing_the_manifest_and_ids_do_not_declare(bolt, manifest):
    payloads = declared(manifest)
    undeclared = [
        listener
        for listener in bolt._listeners
        if not any(
            listener.matches(req=BoltRequest(body=body, mode="socket_mode"), resp=BoltResponse(status=200))
            for body in payloads
        )
    ]
    assert undeclared == [], [getattr(listener, "ack_function", listener) for listener in undeclared]
    for other_command in ("/token", "/tokenbot", "/help"):
        assert handlers_of(bolt, command_body(other_command)) == []
    for other_event in ("message", "app_mention", "member_joined_channel", "app_uninstalled"):
        assert handlers_of(bolt, event_body(other_event)) == []
    assert handlers_of(bolt, action_body("some_other_button")) == []
    assert handlers_of(bolt, view_body("some_other_modal")) == []


def test_the_manifest_switches_on_what_the_listeners_need(manifest):
    assert manifest["settings"]["interactivity"]["is_enabled"] is True  # buttons and modals
    if "app_home_opened" in manifest_events(manifest):
        assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert manifest["settings"]["socket_mode_enabled"] is True  # `tokenbot serve` defaults to it
