"""Events API handlers: the only place an event type meets its function."""

from slack_bolt import App

from bot.slack.context import Deps
from bot.slack.ids import Event
from bot.slack.listeners.events import app_home_opened
from bot.slack.listeners.lazy import acknowledge


def register(app: App, deps: Deps) -> None:
    app.event(Event.APP_HOME_OPENED)(ack=acknowledge, lazy=[app_home_opened.handler(deps)])
