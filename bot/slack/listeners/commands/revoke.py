"""/tokens revoke <token_id> <reason>: shows the token and a Revoke button with Slack's own
"are you sure?"; the button is the reminders' Revoke (`actions/revoke.py`), which checks the
clicker again, calls Databricks and records the decision. Nothing happens before the click."""

from bot.db import session_scope
from bot.services import report
from bot.slack import references
from bot.slack.blocks import answers, code, commands, escape, short_id
from bot.slack.blocks.answers import Usage
from bot.slack.context import Deps
from bot.slack.ids import Subcommand
from bot.slack.listeners.commands.request import BadInput, CommandRequest, find_token

USAGE = Usage(Subcommand.REVOKE, "<token_id> <reason>", "revoke a token, after you confirm", admin=True)


def handler(deps: Deps):
    def handle(request: CommandRequest) -> None:
        parts = request.split(1)
        if not parts:
            raise BadInput("Which token? Give its id and the reason.")
        if len(parts) < 2:
            raise BadInput("Say why: the reason is kept with the decision.")
        given, reason = parts
        with session_scope(deps.engine) as session:
            token = find_token(session, given)
            views = report.token_views(
                session=session, policy=deps.settings.policy, now=deps.now(), token_pks=[token.id]
            )
        if not views:
            request.reply(
                answers.plain(
                    f"Token {code(short_id(token.token_id))} in *{escape(token.workspace)}* is already gone; "
                    "there is nothing to revoke."
                )
            )
            return
        request.reply(
            commands.revoke_confirmation(views[0], reason, references.for_token(token.id), deps.now())
        )

    return handle
