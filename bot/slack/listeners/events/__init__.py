"""Events API handlers: the only place an event type meets its function."""

from slack_bolt import App

from bot.slack.context import Deps
from bot.slack.ids import Event
from bot.slack.listeners.acked import acked_first
from bot.slack.listeners.events import app_home_opened


def register(app: App, deps: Deps) -> None:
    app.event(Event.APP_HOME_OPENED)(**acked_first(app_home_opened.handler(deps)))
