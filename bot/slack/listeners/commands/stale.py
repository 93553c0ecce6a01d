"""/tokens stale [days]: tokens unused for N days (default 60), the longest unused first."""

from bot.db import session_scope
from bot.services import report
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
        with session_scope(deps.engine) as session:
            views = report.token_views(session=session, policy=deps.settings.policy, now=now)
        unused = sorted(
            (v for v in views if commands.unused_since(v, now, days)),
            key=lambda v: (
                v.last_used_on is not None,
                v.last_used_on or v.created_at,
                v.workspace,
                v.token_id,
            ),
        )
        request.reply(commands.stale(unused, days, now, request.page_of(days)))

    return handle
