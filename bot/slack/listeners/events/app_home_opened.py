"""The App Home tab: drawn (`views.publish`) each time someone opens it, and again after a
decision taken from it (see `listeners/common.after`)."""

from typing import Any

from slack_sdk import WebClient

from bot.slack.context import Deps
from bot.slack.surfaces.home import publish


def handler(deps: Deps):
    def handle(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab", "home") != "home" or not event.get("user"):
            return
        publish(deps, client, event["user"])

    return handle
