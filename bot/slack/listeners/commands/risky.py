"""/tokens risky: tokens with findings, worst first (FINDING_SEVERITY)."""

from bot.db import session_scope
from bot.services import scans, windows
from bot.slack.blocks import answers, commands
from bot.slack.blocks.answers import Usage, echo
from bot.slack.context import Deps
from bot.slack.ids import Subcommand
from bot.slack.listeners.commands.request import BadInput, CommandRequest

USAGE = Usage(Subcommand.RISKY, "", "tokens with findings, worst first", admin=True)
WORKER_DIED = (
    "The risk scan stopped before it finished: the process reading the tokens ended unexpectedly "
    "(perhaps out of memory). Try again in a few minutes."
)


def handler(deps: Deps):
    def handle(request: CommandRequest) -> None:
        if request.words:
            raise BadInput(f"`risky` takes no arguments, not {echo(request.arguments)}.")
        page = request.page_of()
        policy, now = deps.settings.policy, deps.now()
        keep = commands.rows_through(page)
        # Every token is evaluated (findings are rules, not stored dates), in a worker process
        # (scans.py); only the worst rows up to this page are kept, and read here.
        try:
            ranking = scans.run(
                deps.engine,
                windows.rank_by_risk,
                policy=policy,
                now=now,
                keep=max(keep, commands.WHOLE_LISTS),
            )
        except scans.ScanFailed:
            request.reply(answers.plain(WORKER_DIED))
            return
        with session_scope(deps.engine) as session:
            total, worst = windows.worst_views(
                session=session,
                policy=policy,
                now=now,
                ranking=ranking,
                keep=keep,
                whole=commands.WHOLE_LISTS,
            )
        request.reply(commands.risky(worst, page, total=total))

    return handle
