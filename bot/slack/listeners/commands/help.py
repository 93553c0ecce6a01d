"""/tokens help (or nothing): the usage of every subcommand."""

from bot.slack import command_blocks
from bot.slack.command_blocks import Usage
from bot.slack.context import Deps
from bot.slack.ids import Subcommand
from bot.slack.listeners.commands.request import CommandRequest

USAGE = Usage(Subcommand.HELP, "", "this list")


def handler(deps: Deps):
    def handle(request: CommandRequest) -> None:
        request.reply(command_blocks.help_answer(request.usages))

    return handle
