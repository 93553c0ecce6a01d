"""Modal submission handlers: the only place a callback id meets its function.

The ack checks the input (`errors`), answering bad input with `response_action="errors"` so the
modal stays open; a valid submission is then one decision on the token the modal was opened for
(`common.apply`, with the modal's own `decide`).
"""

from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.slack.context import Deps
from bot.slack.first_clicks import FirstClicksFirst
from bot.slack.ids import View
from bot.slack.listeners.common import Click, apply
from bot.slack.listeners.lazy import soon
from bot.slack.listeners.views import confirm_scopes, extend, restore_scopes

FORMS = {
    View.CONFIRM_SCOPES: confirm_scopes,
    View.EXTEND: extend,
    View.RESTORE_SCOPES: restore_scopes,
}


def register(app: App, deps: Deps, work: FirstClicksFirst) -> None:
    for callback_id, form in FORMS.items():
        app.view(callback_id)(soon(work, _submitted(deps, form), check=form.errors))


def _submitted(deps: Deps, form):
    def submitted(body: dict[str, Any], client: WebClient) -> None:
        apply(
            deps,
            client,
            Click.of_submission(body),
            lambda session, ref, actor: form.decide(deps, body, session, ref, actor),
        )

    return submitted
