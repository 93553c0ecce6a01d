"""Slack listeners: one handler per file, bound to their ids in each kind's `register()`."""

from slack_bolt import App

from bot.slack.context import Deps
from bot.slack.first_clicks import FirstClicksFirst
from bot.slack.listeners import actions, commands, events, views


def register_all(app: App, deps: Deps, work: FirstClicksFirst) -> None:
    actions.register(app, deps, work)
    views.register(app, deps, work)
    commands.register(app, deps, work)
    events.register(app, deps, work)
