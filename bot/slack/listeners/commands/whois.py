"""/tokens whois <@user>: the Databricks principals a Slack user is matched to, and why (the same
email, an email at a mapped domain, an admin's assignment). Admins only."""

from bot.db import session_scope
from bot.services import recipients
from bot.slack.blocks import commands
from bot.slack.blocks.answers import Usage, echo
from bot.slack.blocks.commands import WhoisMatch
from bot.slack.context import Deps
from bot.slack.ids import Subcommand
from bot.slack.listeners.commands.request import BadInput, CommandRequest, slack_user

USAGE = Usage(
    Subcommand.WHOIS, "<@user>", "the Databricks principals a Slack user is matched to, and why", admin=True
)


def handler(deps: Deps):
    def handle(request: CommandRequest) -> None:
        words = request.words
        if len(words) != 1:
            raise BadInput(
                "Whom? Mention one person." if not words else f"One person, not {echo(request.arguments)}."
            )
        user_id = slack_user(words[0])
        user = deps.identify(request.client, user_id)  # matched now if they never used tokenbot
        with session_scope(deps.engine) as session:
            found = recipients.matches_of(
                session=session,
                user_id=user_id,
                email=user.email if user else None,
                domains_map=deps.settings.slack.email_domains_map,
            )
            matches = [
                WhoisMatch(
                    workspace=p.workspace,
                    kind=p.kind,
                    name=p.email or p.application_id or p.principal_id,
                    display_name=p.display_name,
                    reason=reason,
                )
                for p, reason in found
            ]
        request.reply(commands.whois(user_id, user, matches, request.page_of(words[0])))

    return handle
