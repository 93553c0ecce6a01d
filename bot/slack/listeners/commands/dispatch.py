"""`/tokens`: ack at once, then route the first word to its subcommand's handler.

Anything that cannot be done (an unknown subcommand, an admin's subcommand asked by someone
else, wrong arguments) gets one line plus the usage, and changes nothing. A subcommand with
effects (`EFFECTS`) runs once per Slack request: a retry (`X-Slack-Retry-Num`) or a replay of
the same request, by its `trigger_id`, gets a short note and does nothing (bot/services/once.py).
Answers are ephemeral, at the command's `response_url`. The pager buttons of long answers come
back here too: their value is the page and the command, run again for whoever clicks, with the
same checks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.db import session_scope
from bot.services import once
from bot.slack.blocks import answers
from bot.slack.blocks.answers import Answer, Usage, echo
from bot.slack.context import Deps
from bot.slack.ids import COMMAND, Subcommand
from bot.slack.listeners.commands.request import BadInput, CommandRequest, slack_unescape

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Route:
    usage: Usage
    handle: Callable[[CommandRequest], None]


Routes = Mapping[str, Route]
Reply = Callable[[Answer], None]
# Subcommands that change something (post, upload, sync, decide): once per Slack request.
EFFECTS = frozenset(
    {
        Subcommand.DIGEST,
        Subcommand.EXPORT,
        Subcommand.SYNC,
        Subcommand.REVOKE,
        Subcommand.EXTEND,
        Subcommand.OWNER,
        Subcommand.ENFORCEMENT,  # resume re-arms the breaker: a decision
    }
)


def handler(deps: Deps, routes: Routes):
    def handle(command, respond, client):
        run(
            deps,
            routes,
            client,
            user_id=command["user_id"],
            channel_id=command.get("channel_id"),
            text=slack_unescape(command.get("text") or ""),
            page=1,
            reply=_replier(respond, client, command["user_id"], command.get("channel_id"), replace=False),
            request_key=command.get("trigger_id"),
        )

    return handle


def page_handler(deps: Deps, routes: Routes):
    """Previous/Next page: the same command again, this page, in place of the answer."""

    def handle(body, respond, client):
        page, text = answers.parse_pager_value((body.get("actions") or [{}])[0].get("value"))
        run(
            deps,
            routes,
            client,
            user_id=body["user"]["id"],
            channel_id=((body.get("container") or {}).get("channel_id")),
            text=text,
            page=page,
            reply=_replier(
                respond,
                client,
                body["user"]["id"],
                (body.get("container") or {}).get("channel_id"),
                replace=True,
            ),
            request_key=body.get("trigger_id"),
        )

    return handle


def run(
    deps: Deps,
    routes: Routes,
    client: WebClient,
    *,
    user_id: str,
    channel_id: str | None,
    text: str,
    page: int,
    reply: Reply,
    request_key: str | None = None,
) -> None:
    words = text.split(maxsplit=1)
    name = words[0].lower() if words else Subcommand.HELP
    usages = [route.usage for route in routes.values()]
    route = routes.get(name)
    if route is None:
        reply(answers.refusal(f"{echo(words[0])} is not something `{COMMAND}` can do.", usages))
        return
    if route.usage.admin and not deps.is_admin(user_id):
        reply(answers.refusal(f"Only tokenbot admins can use `{COMMAND} {name}`.", [route.usage]))
        return
    if name in EFFECTS and not _first_time(deps, request_key, name, user_id):
        logger.info("%s %s by %s: a retry or replay of a request already run", COMMAND, name, user_id)
        reply(answers.plain(f"This `{COMMAND} {name}` was already received and run once."))
        return
    request = CommandRequest(
        deps=deps,
        client=client,
        user_id=user_id,
        channel_id=channel_id,
        name=name,
        arguments=words[1] if len(words) > 1 else "",
        page=page,
        usages=usages,
        reply=reply,
    )
    try:
        deps.identify(client, user_id)  # the first use matches the caller to their principals
        route.handle(request)
    except BadInput as bad:
        reply(answers.refusal(bad.line, [route.usage]))
    except Exception:
        logger.exception("%s %s by %s failed", COMMAND, name, user_id)
        reply(answers.failure())


def _first_time(deps: Deps, request_key: str | None, name: str, user_id: str) -> bool:
    if not request_key:  # Slack always sends a trigger_id; without one there is nothing to key on
        return True
    with session_scope(deps.engine) as session:
        key, kind = f"command:{request_key}", f"command:{name}"
        return once.claim(session=session, key=key, kind=kind, user_id=user_id, now=deps.now())


def _replier(respond, client: WebClient, user_id: str, channel_id: str | None, *, replace: bool) -> Reply:
    def reply(answer: Answer) -> None:
        options = {"replace_original": True} if replace else {"response_type": "ephemeral"}
        response = respond(**answer.payload(), **options)
        status = getattr(response, "status_code", 200) if response is not None else 200
        if status == 404 and channel_id:
            # A response_url takes 5 posts within 30 minutes, then Slack answers 404 (used_url,
            # expired_url): the answer still reaches the person, as a new ephemeral message.
            try:
                client.chat_postEphemeral(channel=channel_id, user=user_id, **answer.payload())
                return
            except SlackApiError as error:
                logger.error("the answer could not be posted: %s", error.response.get("error"))
        if status >= 300:
            logger.error("the answer could not be posted: HTTP %s %s", response.status_code, response.body)

    return reply
