"""Events API handlers: the only place an event type meets its function."""

from slack_bolt import App

from bot.slack.context import Deps
from bot.slack.first_clicks import FirstClicksFirst
from bot.slack.ids import Event
from bot.slack.listeners.events import app_home_opened
from bot.slack.listeners.lazy import soon


def register(app: App, deps: Deps, work: FirstClicksFirst) -> None:
    app.event(Event.APP_HOME_OPENED)(soon(work, app_home_opened.handler(deps)))
