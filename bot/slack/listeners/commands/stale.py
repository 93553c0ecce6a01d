"""/tokens stale [days]: tokens unused for N days (default 60), the longest unused first."""

from bot.db import session_scope
from bot.services import windows
from bot.slack.blocks import commands
from bot.slack.blocks.answers import Usage, echo
from bot.slack.context import Deps
from bot.slack.ids import Subcommand
from bot.slack.listeners.commands.request import BadInput, CommandRequest, whole_number

USAGE = Usage(Subcommand.STALE, "[days]", "tokens unused for that many days (60 unless given)", admin=True)
DEFAULT_DAYS = 60
MAX_DAYS = 3650


def handler(deps: Deps):
    def handle(request: CommandRequest) -> None:
        words = request.words
        if len(words) > 1:
            raise BadInput(f"Too many arguments: {echo(request.arguments)}.")
        days = whole_number(words[0], "days", 1, MAX_DAYS) if words else DEFAULT_DAYS
        now = deps.now()
        page = request.page_of(days)
        keep = commands.rows_through(page)
        # Counted and chosen in SQL: only the rows up to this page are read and evaluated.
        with session_scope(deps.engine) as session:
            policy = deps.settings.policy
            total, shown = windows.stale(
                session=session, policy=policy, now=now, days=days, keep=keep, whole=commands.WHOLE_LISTS
            )
        request.reply(commands.stale(shown, days, now, page, total=total))

    return handle
