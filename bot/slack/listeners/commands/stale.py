"""/tokens stale [days]: tokens unused for N days (default 60), the longest unused first."""

from bot.db import session_scope
from bot.services import report, windows
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
        unused = [windows.unused_since(now, days)]
        # Counted, ordered and cut in SQL: only the rows up to this page are read and evaluated.
        with session_scope(deps.engine) as session:
            total = report.count_tokens(session=session, where=unused)
            shown = list(
                report.iter_views(
                    session=session,
                    policy=deps.settings.policy,
                    now=now,
                    where=unused,
                    order_by=windows.longest_unused_first(session),
                    limit=commands.rows_through(page),
                )
            )
        request.reply(commands.stale(shown, days, now, page, total=total))

    return handle
