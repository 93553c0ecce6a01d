"""/tokens digest: post the channel digest now (the scheduled one still comes)."""

from bot.slack import command_blocks
from bot.slack.blocks import escape
from bot.slack.command_blocks import Usage, echo
from bot.slack.context import Deps
from bot.slack.ids import Subcommand
from bot.slack.listeners.commands.request import BadInput, CommandRequest

USAGE = Usage(Subcommand.DIGEST, "", "post the digest to its channel now", admin=True)


def handler(deps: Deps):
    def handle(request: CommandRequest) -> None:
        if request.words:
            raise BadInput(f"`digest` takes no arguments, not {echo(request.arguments)}.")
        if deps.post_digest is None:
            request.reply(
                command_blocks.plain(
                    "The digest is not configured here: set `slack.digest_channel` in the configuration file."
                )
            )
            return
        summary = deps.post_digest()
        request.reply(command_blocks.plain(f"Digest posted: {escape(summary)}"))

    return handle
