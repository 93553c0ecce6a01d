"""Button handlers: the only place an action id meets its function.

Most buttons are one decision on the token the button names (`common.apply` resolves the button,
runs the decision, tells the clicker and redraws); three open the decision's modal for the owner
or an admin and refuse anyone else (`common.open_modal`); Approve and Deny decide on a request
awaiting an admin (`common.resolve_request`); Retry and the owner picker do more (`HANDLERS`).
"""

from functools import partial

from slack_bolt import App

from bot.slack.context import Deps
from bot.slack.first_clicks import FirstClicksFirst
from bot.slack.ids import Action
from bot.slack.listeners.actions import (
    accept,
    approve,
    assign_owner,
    confirm_scopes,
    deny,
    extend,
    looks_fine,
    misuse,
    not_mine,
    restore_scopes,
    retry,
    revoke,
    snooze,
)
from bot.slack.listeners.common import Click, apply, open_modal, resolve_request
from bot.slack.listeners.lazy import later, soon

DECISIONS = {
    Action.ACCEPT: accept.decide,
    Action.REVOKE: revoke.decide,
    Action.SNOOZE: snooze.decide,
    Action.NOT_MINE: not_mine.decide,
    Action.LOOKS_FINE: looks_fine.decide,
}
MODALS = {
    Action.CONFIRM_SCOPES: confirm_scopes,
    Action.EXTEND: extend,
    Action.RESTORE_SCOPES: restore_scopes,
}
REQUESTS = {
    Action.APPROVE: approve.decide,
    Action.DENY: deny.decide,
}
HANDLERS = {
    Action.RETRY: retry.handle,
    Action.ASSIGN_OWNER: assign_owner.handle,
    Action.MISUSE_ACKNOWLEDGE: misuse.acknowledge,
    Action.MISUSE_REVOKE: misuse.revoke,
}


def register(app: App, deps: Deps, work: FirstClicksFirst) -> None:
    for action_id, decide in DECISIONS.items():
        app.action(action_id)(soon(work, later(deps, partial(_decide, decide))))
    for action_id, form in MODALS.items():
        app.action(action_id)(soon(work, later(deps, partial(_open, form))))
    for action_id, decide in REQUESTS.items():
        app.action(action_id)(soon(work, later(deps, partial(_resolve, decide))))
    for action_id, handle in HANDLERS.items():
        app.action(action_id)(soon(work, later(deps, handle)))


def _decide(decide, deps: Deps, body, client) -> None:
    click = Click.of(body)
    apply(deps, client, click, lambda session, ref, actor: decide(deps, click, session, ref, actor))


def _open(form, deps: Deps, body, client) -> None:
    click = Click.of(body)
    open_modal(
        deps,
        client,
        click,
        build=lambda view, ref: form.build(deps, click, view, ref),
        refuse=lambda session, ref, actor: form.refuse(deps, session, ref, actor),
    )


def _resolve(decide, deps: Deps, body, client) -> None:
    click = Click.of(body)
    resolve_request(deps, client, click, body, lambda session, pk, actor: decide(deps, session, pk, actor))
