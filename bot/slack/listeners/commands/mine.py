"""/tokens mine: the caller's tokens, nearest deadline first, with a reminder's buttons."""

from bot.db import session_scope
from bot.slack.blocks import commands
from bot.slack.blocks.answers import Usage, echo
from bot.slack.context import Deps
from bot.slack.ids import Subcommand
from bot.slack.listeners.commands.request import BadInput, CommandRequest
from bot.slack.surfaces import overview

USAGE = Usage(Subcommand.MINE, "", "your tokens, their deadlines, and the buttons to decide")


def handler(deps: Deps):
    def handle(request: CommandRequest) -> None:
        if request.words:
            raise BadInput(f"`mine` takes no arguments, not {echo(request.arguments)}.")
        tz = deps.tz_of(request.client, request.user_id)
        now = deps.now()
        with session_scope(deps.engine) as session:
            found = overview.owned(session, deps.settings.policy, now, request.user_id)
        request.reply(
            commands.mine(found.items, found.decided, found.undated, tz, now, request.page_of())
        )

    return handle
