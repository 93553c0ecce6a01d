"""What every `/tokens` subcommand handler gets, and the parsing they share.

A handler reads `CommandRequest.arguments`, raises `BadInput` with a one-line answer when they
are wrong (the dispatcher adds the subcommand's usage), and answers with `request.reply(...)`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from slack_sdk import WebClient
from sqlmodel import Session

from bot.models import Token
from bot.services import queries
from bot.slack.blocks import code, escape
from bot.slack.blocks.answers import Answer, Page, Usage, echo
from bot.slack.context import Deps

TOKEN_ID = re.compile(
    r"^(?:(?P<workspace>[A-Za-z0-9][A-Za-z0-9_.\-]{0,99})/)?(?P<id>[A-Za-z0-9_.\-]{1,100})$"
)
MENTION = re.compile(r"^<@(?P<id>[UW][A-Z0-9]{2,})(?:\|[^>]*)?>$|^@?(?P<bare>[UW][A-Z0-9]{2,})$")
MAX_MATCHES = 50


class BadInput(Exception):
    """The arguments cannot be used: `line` says why, in safe mrkdwn."""

    def __init__(self, line: str) -> None:
        super().__init__(line)
        self.line = line


@dataclass
class CommandRequest:
    deps: Deps
    client: WebClient
    user_id: str
    channel_id: str | None
    name: str  # the subcommand
    arguments: str  # the rest of the text, Slack's escaping undone
    page: int
    usages: Sequence[Usage]  # every subcommand, for help
    reply: Callable[[Answer], None]

    @property
    def words(self) -> list[str]:
        return self.arguments.split()

    def split(self, fixed: int) -> list[str]:
        """`fixed` words, then the rest as one text (a reason keeps its spaces)."""
        return self.arguments.split(maxsplit=fixed)

    def page_of(self, *words: object) -> Page:
        """This page of the answer to `/tokens <name> <words>`, for the pager buttons."""
        return Page(self.page, " ".join([self.name, *(str(w) for w in words if w not in (None, ""))]))

    @property
    def is_admin(self) -> bool:
        return self.deps.is_admin(self.user_id)


def slack_unescape(text: str) -> str:
    """Slack sends `&`, `<` and `>` typed by people as entities; mentions stay as `<@U…>`."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def is_number(word: str) -> bool:
    """ASCII digits only: `str.isdigit` also accepts "²", which `int()` refuses."""
    return word.isascii() and word.isdigit()


def whole_number(word: str | None, what: str, low: int, high: int) -> int:
    if word is None or not is_number(word) or len(word) > 9 or not low <= int(word) <= high:
        raise BadInput(f"{echo(word or '')} is not a number of {what} from {low} to {high}.")
    return int(word)


def slack_user(word: str | None) -> str:
    """The user id of a mention as Slack sends it (`<@U123|name>` or `<@U123>`), or a bare id."""
    match = MENTION.match(word or "")
    if match is None:
        raise BadInput(f"{echo(word or '')} is not a Slack user: mention them, e.g. `@ada`.")
    return match.group("id") or match.group("bare")


def find_token(session: Session, given: str | None, *, owner: str | None = None) -> Token:
    """The one token `given` names: a full id or a unique prefix, optionally `workspace/id`.
    With `owner`, only that Slack user's tokens are searched (what a non-admin may see).
    Live tokens win over gone ones with the same prefix."""
    match = TOKEN_ID.match(given or "")
    if match is None:
        raise BadInput(f"{echo(given or '')} is not a token id.")
    wanted, workspace = match.group("id"), match.group("workspace")
    found = queries.tokens_by_id(
        session=session, prefix=wanted, workspace=workspace, owner=owner, limit=MAX_MATCHES + 1
    )
    exact = [t for t in found if t.token_id == wanted]
    candidates = exact or found
    live = [t for t in candidates if t.gone_at is None]
    candidates = live or candidates
    if not candidates:
        mine = " of yours" if owner else ""
        raise BadInput(f"tokenbot knows no token{mine} {code(given or '')}.")
    if len(candidates) > 1:
        raise BadInput(_ambiguous(given or "", candidates))
    return candidates[0]


def _ambiguous(given: str, candidates: Sequence[Token]) -> str:
    many = "more than " if len(candidates) > MAX_MATCHES else ""
    places = Counter(t.workspace for t in candidates[:MAX_MATCHES])
    where = ", ".join(f"{n} in *{escape(name)}*" for name, n in sorted(places.items()))
    hint = "give more of the id" + (", or write `workspace/id`" if len(places) > 1 else "")
    return f"{code(given)} matches {many}{len(candidates[:MAX_MATCHES])} tokens ({where}): {hint}."
