"""/tokens export: the report (`tokenbot report --format csv`) as a file in the caller's DM."""

import logging

from slack_sdk.errors import SlackApiError

from bot.db import session_scope
from bot.services import report
from bot.services.exports import report_csv
from bot.slack.blocks import answers, code
from bot.slack.blocks.answers import Usage, echo
from bot.slack.context import Deps
from bot.slack.ids import Subcommand
from bot.slack.listeners.commands.request import BadInput, CommandRequest

logger = logging.getLogger(__name__)

USAGE = Usage(Subcommand.EXPORT, "", "the report as a CSV file, sent to you in a direct message", admin=True)


def handler(deps: Deps):
    def handle(request: CommandRequest) -> None:
        if request.words:
            raise BadInput(f"`export` takes no arguments, not {echo(request.arguments)}.")
        now = deps.now()
        policy = deps.settings.policy
        with session_scope(deps.engine) as session:
            views = report.by_nearest_deadline(report.token_views(session=session, policy=policy, now=now))
        content = report_csv(views, policy, now)
        filename = f"tokenbot-report-{now:%Y-%m-%d}.csv"
        client = request.client
        try:
            channel = client.conversations_open(users=request.user_id)["channel"]["id"]
            client.files_upload_v2(
                channel=channel,
                content=content,
                filename=filename,
                title=f"tokenbot report, {now:%d %b %Y %H:%M} UTC",
                initial_comment=f"{len(views)} live tokens, nearest deadline first.",
            )
        except SlackApiError as error:
            reason = error.response.get("error")
            logger.error("export for %s: the upload failed: %s", request.user_id, reason)
            request.reply(
                answers.plain(f"Slack refused the upload ({code(str(reason))}); try again later.")
            )
            return
        request.reply(
            answers.plain(f"Sent {code(filename)} ({len(views)} tokens) to our direct messages.")
        )

    return handle
