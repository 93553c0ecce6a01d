"""/tokens owner <token_id> <@user>: an admin names the owner of a token (usually a service
principal's); it covers every token of that principal in the workspace."""

from bot.db import session_scope
from bot.services import decisions
from bot.slack.blocks import commands
from bot.slack.blocks.answers import Usage, echo
from bot.slack.context import Deps
from bot.slack.ids import Subcommand
from bot.slack.listeners.commands.request import BadInput, CommandRequest, find_token, slack_user
from bot.slack.listeners.common import refresh_token_messages

USAGE = Usage(Subcommand.OWNER, "<token_id> <@user>", "make someone the owner of a token", admin=True)


def handler(deps: Deps):
    def handle(request: CommandRequest) -> None:
        words = request.words
        if len(words) != 2:
            raise BadInput(
                "Give a token id and a person."
                if len(words) < 2
                else f"Too many arguments: {echo(request.arguments)}."
            )
        owner = slack_user(words[1])
        with session_scope(deps.engine) as session:
            token = find_token(session, words[0])
            outcome = decisions.assign_owner(
                session=session, actor=deps.actor(request.user_id), token_pk=token.id, owner_slack_id=owner
            )
        request.reply(commands.outcome(outcome.message))
        if outcome.token_pk:
            refresh_token_messages(deps, request.client, outcome.token_pk)

    return handle
