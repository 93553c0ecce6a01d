"""Button handlers: the only place an action id meets its function."""

from slack_bolt import App

from bot.slack.context import Deps
from bot.slack.ids import Action
from bot.slack.listeners.actions import (
    accept,
    approve,
    assign_owner,
    confirm_scopes,
    deny,
    extend,
    looks_fine,
    not_mine,
    restore_scopes,
    retry,
    revoke,
    snooze,
)


def register(app: App, deps: Deps) -> None:
    app.action(Action.CONFIRM_SCOPES)(confirm_scopes.handler(deps))
    app.action(Action.ACCEPT)(accept.handler(deps))
    app.action(Action.EXTEND)(extend.handler(deps))
    app.action(Action.REVOKE)(revoke.handler(deps))
    app.action(Action.SNOOZE)(snooze.handler(deps))
    app.action(Action.NOT_MINE)(not_mine.handler(deps))
    app.action(Action.RESTORE_SCOPES)(restore_scopes.handler(deps))
    app.action(Action.LOOKS_FINE)(looks_fine.handler(deps))
    app.action(Action.RETRY)(retry.handler(deps))
    app.action(Action.APPROVE)(approve.handler(deps))
    app.action(Action.DENY)(deny.handler(deps))
    app.action(Action.ASSIGN_OWNER)(assign_owner.handler(deps))
