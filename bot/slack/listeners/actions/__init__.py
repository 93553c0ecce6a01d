"""Button handlers: the only place an action id meets its function.

Most buttons are one decision on the token the button names (`common.apply` resolves the button,
runs the decision, tells the clicker and redraws); Approve and Deny decide on a request awaiting
an admin (`common.resolve_request`); the rest open a modal or do more (`HANDLERS`).
"""

from functools import partial

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
from bot.slack.listeners.common import Click, apply, resolve_request
from bot.slack.listeners.lazy import acknowledge, later

DECISIONS = {
    Action.ACCEPT: accept.decide,
    Action.REVOKE: revoke.decide,
    Action.SNOOZE: snooze.decide,
    Action.NOT_MINE: not_mine.decide,
    Action.LOOKS_FINE: looks_fine.decide,
}
REQUESTS = {
    Action.APPROVE: approve.decide,
    Action.DENY: deny.decide,
}
HANDLERS = {
    Action.CONFIRM_SCOPES: confirm_scopes.handle,
    Action.EXTEND: extend.handle,
    Action.RESTORE_SCOPES: restore_scopes.handle,
    Action.RETRY: retry.handle,
    Action.ASSIGN_OWNER: assign_owner.handle,
}


def register(app: App, deps: Deps) -> None:
    for action_id, decide in DECISIONS.items():
        app.action(action_id)(ack=acknowledge, lazy=[later(deps, partial(_decide, decide))])
    for action_id, decide in REQUESTS.items():
        app.action(action_id)(ack=acknowledge, lazy=[later(deps, partial(_resolve, decide))])
    for action_id, handle in HANDLERS.items():
        app.action(action_id)(ack=acknowledge, lazy=[later(deps, handle)])


def _decide(decide, deps: Deps, body, client) -> None:
    click = Click.of(body)
    apply(deps, client, click, lambda session, ref, actor: decide(deps, click, session, ref, actor))


def _resolve(decide, deps: Deps, body, client) -> None:
    click = Click.of(body)
    resolve_request(deps, client, click, body, lambda session, pk, actor: decide(deps, session, pk, actor))
