"""/tokens sync: read every workspace from Databricks now; the summary comes when it is done."""

from bot.services.inventory import sync_line
from bot.slack.blocks import answers, commands
from bot.slack.blocks.answers import Usage, echo
from bot.slack.context import Deps
from bot.slack.ids import Subcommand
from bot.slack.listeners.commands.request import BadInput, CommandRequest

USAGE = Usage(Subcommand.SYNC, "", "read every workspace from Databricks now", admin=True)


def handler(deps: Deps):
    def handle(request: CommandRequest) -> None:
        if request.words:
            raise BadInput(f"`sync` takes no arguments, not {echo(request.arguments)}.")
        if deps.run_sync is None:
            request.reply(answers.plain("Syncing from Slack is not set up in this tokenbot."))
            return
        count = len(deps.settings.workspaces)
        request.reply(
            answers.plain(
                f"Syncing {count} workspace{'s' if count != 1 else ''}; the summary follows here."
            )
        )
        results = deps.run_sync()
        request.reply(
            commands.sync_done([sync_line(r) for r in results], sum(not r.ok for r in results))
        )

    return handle
