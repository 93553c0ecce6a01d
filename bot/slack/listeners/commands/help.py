"""/tokens help (or nothing): the usage of every subcommand."""

from bot.slack.blocks import answers
from bot.slack.blocks.answers import Usage
from bot.slack.context import Deps
from bot.slack.ids import Subcommand
from bot.slack.listeners.commands.request import CommandRequest

USAGE = Usage(Subcommand.HELP, "", "this list")


def handler(deps: Deps):
    def handle(request: CommandRequest) -> None:
        request.reply(answers.help_answer(request.usages))

    return handle
