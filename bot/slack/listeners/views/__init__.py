"""Modal submission handlers: the only place a callback id meets its function."""

from slack_bolt import App

from bot.slack.context import Deps
from bot.slack.ids import View
from bot.slack.listeners.acked import acked_first
from bot.slack.listeners.views import confirm_scopes, extend, restore_scopes


def register(app: App, deps: Deps) -> None:
    app.view(View.CONFIRM_SCOPES)(**acked_first(confirm_scopes.handler(deps)))
    app.view(View.EXTEND)(**acked_first(extend.handler(deps)))
    app.view(View.RESTORE_SCOPES)(**acked_first(restore_scopes.handler(deps)))
