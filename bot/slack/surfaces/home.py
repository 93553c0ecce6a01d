"""Publishing the App Home tab (`views.publish`): read the reader's tokens and decisions, build
the view (`blocks.home.home_view`), publish it. Done each time someone opens the tab, and again
after a decision taken from it (`listeners/common.after`)."""

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.db import session_scope
from bot.slack.blocks import home
from bot.slack.context import Deps
from bot.slack.surfaces import overview

logger = logging.getLogger(__name__)


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
