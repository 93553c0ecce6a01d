"""The App Home tab: drawn (`views.publish`) each time someone opens it, and again after a
decision taken from it (see `listeners/common.after`)."""

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.db import session_scope
from bot.slack import home, overview
from bot.slack.context import Deps

logger = logging.getLogger(__name__)


def handler(deps: Deps):
    def handle(event, client):
        # Events are acknowledged by bolt before this runs.
        if event.get("tab", "home") != "home" or not event.get("user"):
            return
        publish(deps, client, event["user"])

    return handle


def publish(deps: Deps, client: WebClient, user_id: str) -> None:
    """Build the reader's Home from the database and publish it; failures are logged."""
    try:
        deps.identify(client, user_id)
        tz = deps.tz_of(client, user_id)
        now = deps.now()
        with session_scope(deps.engine) as session:
            data = overview.home_data(session, deps.settings.policy, now, user_id, tz, deps.is_admin(user_id))
        view = home.home_view(data)
        client.views_publish(user_id=user_id, view=view)
    except SlackApiError as error:
        logger.error("could not publish the Home of %s: %s", user_id, error.response.get("error"))
    except Exception:
        logger.exception("building the Home of %s failed", user_id)
