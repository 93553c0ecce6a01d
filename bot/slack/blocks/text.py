"""Slack mrkdwn and time, the way every builder writes them: user text escaped once, ids as
inline code, moments in the reader's time zone; and blocks back as plain text for the terminal."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk.models.blocks import Block

from bot.mentions import SLACK_USER_ID

ZERO_WIDTH_SPACE = "\u200b"
_MARKUP = re.compile(r"[*_~`]")


def escape_entities(text: str) -> str:
    """Slack's three control characters as entities (docs.slack.dev, "Escaping text"). Enough for
    tokenbot's own words (setting names keep their underscores); user text goes through `escape`."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape(text: str) -> str:
    """User text as mrkdwn that shows it as written: no mention, link or broadcast (entities), and
    no bold, italics, strike or code from its `*`, `_`, `~` and backticks. Slack has no escape for
    those (a backslash stays visible; a space beside the character stops it: Slack's answer in
    slackhq/slack-api-docs#34), so each is fenced by zero-width spaces, which stop the pairing
    invisibly (as in anneschuth/claude-threads#92). Bare URLs: text objects holding user text set
    `verbatim: true` (`mrkdwn`), which turns Slack's auto-linking off."""
    fenced = escape_entities(text)
    return _MARKUP.sub(lambda found: ZERO_WIDTH_SPACE + found.group() + ZERO_WIDTH_SPACE, fenced)


_ESCAPED_MENTION = re.compile(rf"&lt;@({SLACK_USER_ID})&gt;")


def safe_text(text: str) -> str:
    """A service's message (plain text quoting token comments) in safe mrkdwn: escaped once, its
    `<@U…>` mentions kept."""
    return _ESCAPED_MENTION.sub(r"<@\1>", escape(text))


def code(text: str) -> str:
    """Inline code: nothing formats inside it, and ids copy as they are."""
    return "`" + escape_entities(text).replace("`", "'") + "`"


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_time(moment: datetime, tz: str | None) -> str:
    """ "Mon 7 Dec 2026, 09:00 CET" in the reader's time zone."""
    local = moment.astimezone(zone(tz))
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M} {local.tzname()}"


def local_day(moment: datetime | None, tz: str | None) -> str:
    if moment is None:
        return "never"
    local = moment.astimezone(zone(tz))
    return f"{local.day} {local:%b %Y}"


def relative(moment: datetime, now: datetime) -> str:
    delta = moment - now
    if delta < timedelta(0):
        return "overdue"
    if delta < timedelta(days=1):
        hours = max(1, int(delta.total_seconds() // 3600))
        return f"in {hours} hour{'s' if hours != 1 else ''}"
    days = delta.days
    return f"in {days} day{'s' if days != 1 else ''}"


def scopes_text(scopes: Iterable[str]) -> str:
    names = list(scopes)
    return ", ".join(code(s) for s in names) if names else "_full access (no scopes)_"


def short_id(token_id: str) -> str:
    return token_id[:10]


def as_text(blocks: Sequence[Block | dict]) -> str:
    """A readable rendering of blocks (objects, or the dicts Slack stores) for the terminal:
    `tokenbot remind --dry-run` and the demo's transcript."""
    lines: list[str] = []
    for block in blocks:
        data = block if isinstance(block, dict) else block.to_dict()
        kind = data["type"]
        if kind == "header":
            lines += [data["text"]["text"].upper(), ""]
        elif kind == "section":
            lines.append(_unescape(data["text"]["text"]))
        elif kind == "context":
            lines.append("  " + " ".join(_unescape(e.get("text", "")) for e in data["elements"]))
        elif kind == "actions":
            lines.append("  " + " ".join(f"[{_element_label(e)}]" for e in data["elements"]))
            lines.append("")
        elif kind == "divider":
            lines.append("-" * 40)
    return "\n".join(lines).rstrip() + "\n"


def _element_label(element: dict) -> str:
    label = element.get("text") or element.get("placeholder") or {}
    return label.get("text") or element.get("type", "?")


def _unescape(text: str) -> str:
    text = text.replace(ZERO_WIDTH_SPACE, "")
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
