"""/tokens risky: tokens with findings, worst first (FINDING_SEVERITY)."""

from bot.db import session_scope
from bot.services import windows
from bot.slack.blocks import commands
from bot.slack.blocks.answers import Usage, echo
from bot.slack.context import Deps
from bot.slack.ids import Subcommand
from bot.slack.listeners.commands.request import BadInput, CommandRequest

USAGE = Usage(Subcommand.RISKY, "", "tokens with findings, worst first", admin=True)


def handler(deps: Deps):
    def handle(request: CommandRequest) -> None:
        if request.words:
            raise BadInput(f"`risky` takes no arguments, not {echo(request.arguments)}.")
        page = request.page_of()
        # Every token is evaluated (findings are rules, not stored dates); only the worst rows up
        # to this page are kept.
        with session_scope(deps.engine) as session:
            total, worst = windows.risky(
                session=session,
                policy=deps.settings.policy,
                now=deps.now(),
                keep=commands.rows_through(page),
                whole=commands.WHOLE_LISTS,
            )
        request.reply(commands.risky(worst, page, total=total))

    return handle
