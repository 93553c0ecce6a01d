"""/tokens policy: the rules in force, in plain words."""

from bot.slack.blocks import commands
from bot.slack.blocks.answers import Usage, echo
from bot.slack.context import Deps
from bot.slack.ids import Subcommand
from bot.slack.listeners.commands.request import BadInput, CommandRequest

USAGE = Usage(Subcommand.POLICY, "", "the token policy in force, in plain words")


def handler(deps: Deps):
    def handle(request: CommandRequest) -> None:
        if request.words:
            raise BadInput(f"`policy` takes no arguments, not {echo(request.arguments)}.")
        settings = deps.settings
        request.reply(commands.policy_answer(settings.policy, settings.slack, settings.dry_run))

    return handle
