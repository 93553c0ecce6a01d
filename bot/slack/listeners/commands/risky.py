"""/tokens risky: tokens with findings, worst first (FINDING_SEVERITY)."""

from bot.db import session_scope
from bot.domain.findings import FINDING_SEVERITY
from bot.services import report
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
        with session_scope(deps.engine) as session:
            views = report.token_views(session=session, policy=deps.settings.policy, now=deps.now())
        flagged = sorted(
            (v for v in views if v.evaluation.findings),
            key=lambda v: commands.by_severity_key(v, FINDING_SEVERITY),
        )
        request.reply(commands.risky(flagged, request.page_of()))

    return handle
