"""/tokens show <token_id>: one token, its deadlines, findings and every decision about it.
Owners see their own tokens; admins see any."""

from bot.db import session_scope
from bot.services import report
from bot.slack.blocks import commands, local_day
from bot.slack.blocks.answers import Usage, echo
from bot.slack.context import Deps
from bot.slack.ids import Subcommand
from bot.slack.listeners.commands.request import BadInput, CommandRequest, find_token
from bot.slack.surfaces import overview

USAGE = Usage(Subcommand.SHOW, "<token_id>", "a token with its deadlines, findings and decisions")
GONE = {"revoked": "Revoked", "expired": "Expired", "unknown": "No longer listed by Databricks"}


def handler(deps: Deps):
    def handle(request: CommandRequest) -> None:
        words = request.words
        if len(words) != 1:
            raise BadInput(
                "Which token? Give one token id."
                if not words
                else f"One token id, not {echo(request.arguments)}."
            )
        now = deps.now()
        tz = deps.tz_of(request.client, request.user_id)
        with session_scope(deps.engine) as session:
            token = find_token(session, words[0], owner=None if request.is_admin else request.user_id)
            [view] = report.token_views(
                session=session, policy=deps.settings.policy, now=now, token_pks=[token.id], include_gone=True
            )
            history = overview.history(session, token_pk=token.id)
        gone = None
        if token.gone_at is not None:
            gone = f"{GONE.get(token.gone_reason or 'unknown', 'Gone')} on {local_day(token.gone_at, tz)}."
        request.reply(
            commands.show(
                view, history, gone, tz, now, request.page_of(f"{token.workspace}/{token.token_id}")
            )
        )

    return handle
