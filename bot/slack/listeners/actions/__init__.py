"""Button handlers: the only place an action id meets its function."""

from slack_bolt import App

from bot.slack.context import Deps
from bot.slack.ids import Action
from bot.slack.listeners.acked import acked_first
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
    app.action(Action.CONFIRM_SCOPES)(**acked_first(confirm_scopes.handler(deps)))
    app.action(Action.ACCEPT)(**acked_first(accept.handler(deps)))
    app.action(Action.EXTEND)(**acked_first(extend.handler(deps)))
    app.action(Action.REVOKE)(**acked_first(revoke.handler(deps)))
    app.action(Action.SNOOZE)(**acked_first(snooze.handler(deps)))
    app.action(Action.NOT_MINE)(**acked_first(not_mine.handler(deps)))
    app.action(Action.RESTORE_SCOPES)(**acked_first(restore_scopes.handler(deps)))
    app.action(Action.LOOKS_FINE)(**acked_first(looks_fine.handler(deps)))
    app.action(Action.RETRY)(**acked_first(retry.handler(deps)))
    app.action(Action.APPROVE)(**acked_first(approve.handler(deps)))
    app.action(Action.DENY)(**acked_first(deny.handler(deps)))
    app.action(Action.ASSIGN_OWNER)(**acked_first(assign_owner.handler(deps)))
