"""/tokens digest: post the channel digest now (the scheduled one still comes)."""

from bot.slack.blocks import commands
from bot.slack.blocks.answers import Usage, echo
from bot.slack.blocks.commands import DigestNow
from bot.slack.context import Deps
from bot.slack.ids import Subcommand
from bot.slack.listeners.commands.request import BadInput, CommandRequest

USAGE = Usage(Subcommand.DIGEST, "", "post the digest to its channel now", admin=True)


def handler(deps: Deps):
    def handle(request: CommandRequest) -> None:
        if request.words:
            raise BadInput(f"`digest` takes no arguments, not {echo(request.arguments)}.")
        done = deps.post_digest() if deps.post_digest is not None else DigestNow(channel=None)
        request.reply(commands.digest_now(done))

    return handle
