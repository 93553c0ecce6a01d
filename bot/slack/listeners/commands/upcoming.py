"""/tokens upcoming [days] [workspace]: deadlines in the next N days (default 14), by day."""

from bot.db import session_scope
from bot.services import queries, windows
from bot.slack.blocks import commands, escape
from bot.slack.blocks.answers import Usage, echo
from bot.slack.context import Deps
from bot.slack.ids import Subcommand
from bot.slack.listeners.commands.request import BadInput, CommandRequest, is_number, whole_number

USAGE = Usage(
    Subcommand.UPCOMING,
    "[days] [workspace]",
    "deadlines in the next days (14 unless given), by day",
    admin=True,
)
DEFAULT_DAYS = 14
MAX_DAYS = 365


def handler(deps: Deps):
    def handle(request: CommandRequest) -> None:
        words = request.words
        if len(words) > 2:
            raise BadInput(f"Too many arguments: {echo(request.arguments)}.")
        numbers = [w for w in words if is_number(w)]
        days = whole_number(numbers[0], "days", 1, MAX_DAYS) if numbers else DEFAULT_DAYS
        others = [w for w in words if not is_number(w)]
        if len(others) > 1 or len(numbers) > 1:
            raise BadInput(f"Give at most a number of days and a workspace, not {echo(request.arguments)}.")
        workspace = others[0] if others else None
        now = deps.now()
        page = request.page_of(days, workspace)
        with session_scope(deps.engine) as session:
            known = queries.workspace_names(session=session)
            known |= {w.name for w in deps.settings.workspaces}
            if workspace is not None and workspace not in known:
                names = ", ".join(f"*{escape(n)}*" for n in sorted(known)) or "none yet"
                raise BadInput(f"There is no workspace {echo(workspace)}; known: {names}.")
            # Narrowed in SQL, evaluated token by token: counts of all, rows up to this page.
            found = windows.upcoming(
                session=session,
                policy=deps.settings.policy,
                now=now,
                days=days,
                keep=commands.rows_through(page),
                whole=commands.WHOLE_LISTS,
                workspace=workspace,
            )
        tz = deps.tz_of(request.client, request.user_id)
        totals = commands.DueTotals(found.counts, found.tokens)
        request.reply(commands.upcoming(found.first, days, workspace, tz, now, page, totals))

    return handle
