"""/tokens export: the report (`tokenbot report --format csv`) as a file in the caller's DM.

A worker process writes the file (`bot/services/scans.py`: reading every token must not hold this
process's interpreter against the other requests), as the tokens are read (`exports.export_csv`
streams them through a temporary file); it is uploaded from disk: Slack's upload
(`files.getUploadURLExternal`, a POST of the bytes to the URL it gives,
`files.completeUploadExternal`) is sent in blocks, so the export of 100,000 tokens never sits in
memory.
"""

import logging
import tempfile
import urllib.request
from pathlib import Path

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.services import exports, scans
from bot.slack.blocks import answers, code
from bot.slack.blocks.answers import Usage, echo
from bot.slack.context import Deps
from bot.slack.ids import Subcommand
from bot.slack.listeners.commands.request import BadInput, CommandRequest

logger = logging.getLogger(__name__)

USAGE = Usage(Subcommand.EXPORT, "", "the report as a CSV file, sent to you in a direct message", admin=True)
UPLOAD_TIMEOUT = 120  # seconds for the bytes to reach Slack
WORKER_DIED = (
    "The export stopped before the file was written: the process writing it ended unexpectedly "
    "(perhaps out of memory). Nothing was sent; try again in a few minutes."
)


class UploadRefused(Exception):
    """Slack's upload URL did not take the bytes."""


def handler(deps: Deps):
    def handle(request: CommandRequest) -> None:
        if request.words:
            raise BadInput(f"`export` takes no arguments, not {echo(request.arguments)}.")
        now = deps.now()
        policy = deps.settings.policy
        filename = f"tokenbot-report-{now:%Y-%m-%d}.csv"
        with tempfile.TemporaryDirectory(prefix="tokenbot-export-") as folder:
            path = Path(folder) / filename
            try:
                # Reading and writing every token is a scan: in a worker process (scans.py).
                count = scans.run(deps.engine, exports.export_csv, policy=policy, now=now, path=str(path))
            except scans.ScanFailed:
                request.reply(answers.plain(WORKER_DIED))
                return
            try:
                channel = request.client.conversations_open(users=request.user_id)["channel"]["id"]
                upload(
                    request.client,
                    path,
                    channel=channel,
                    title=f"tokenbot report, {now:%d %b %Y %H:%M} UTC",
                    comment=f"{count} live tokens, nearest deadline first.",
                )
            except (SlackApiError, UploadRefused) as error:
                reason = error.response.get("error") if isinstance(error, SlackApiError) else str(error)
                logger.error("export for %s: the upload failed: %s", request.user_id, reason)
                request.reply(
                    answers.plain(f"Slack refused the upload ({code(str(reason))}); try again later.")
                )
                return
        request.reply(answers.plain(f"Sent {code(filename)} ({count} tokens) to our direct messages."))

    return handle


def upload(client: WebClient, path: Path, *, channel: str, title: str, comment: str) -> None:
    """Slack's upload in its three steps, the file's bytes read from disk in blocks."""
    size = path.stat().st_size
    ticket = client.files_getUploadURLExternal(filename=path.name, length=size)
    with path.open("rb") as body:
        post = urllib.request.Request(  # noqa: S310 - the https URL Slack just gave us
            ticket["upload_url"],
            data=body,
            method="POST",
            headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"},
        )
        # The client's own proxy and TLS settings, as slack_sdk's files_upload_v2 uses them.
        handlers = [urllib.request.HTTPSHandler(context=client.ssl)] if client.ssl else []
        if client.proxy:
            handlers.append(urllib.request.ProxyHandler({"http": client.proxy, "https": client.proxy}))
        try:
            with urllib.request.build_opener(*handlers).open(post, timeout=UPLOAD_TIMEOUT) as answer:
                answer.read()
        except OSError as error:  # HTTPError included: the URL refused the bytes
            raise UploadRefused(f"upload: {getattr(error, 'code', None) or type(error).__name__}") from None
    client.files_completeUploadExternal(
        files=[{"id": ticket["file_id"], "title": title}], channel_id=channel, initial_comment=comment
    )
