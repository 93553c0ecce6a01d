"""Slack listeners: one handler per file, bound to their ids in each kind's `register()`."""

from slack_bolt import App

from bot.slack.context import Deps
from bot.slack.listeners import actions, commands, events, views


def register_all(app: App, deps: Deps) -> None:
    actions.register(app, deps)
    views.register(app, deps)
    commands.register(app, deps)
    events.register(app, deps)
