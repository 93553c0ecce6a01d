"""Pure Block Kit builders: domain objects in, `slack_sdk.models` blocks out (STYLE.md 3).

Nothing here talks to Slack; tests call the builders directly and `to_dict()` checks Slack's
limits. User-supplied text (token comments, names) is escaped so it can never mention
`<!channel>` or anyone else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    SectionBlock,
)

from bot.domain.policy import DEADLINE_LABELS, FINDING_LABELS, DeadlineKind, Finding
from bot.mentions import SLACK_USER_ID
from bot.services.ports import ReminderItem, ReminderMessage
from bot.slack import fit
from bot.slack.budget import MESSAGE_BLOCKS, Budget
from bot.slack.fit import clip, context, header, section
from bot.slack.ids import TOKEN_BLOCK_PREFIX, Action

MAX_MESSAGE_BLOCKS = MESSAGE_BLOCKS
SECTION_TEXT_LIMIT = fit.SECTION_TEXT
COMMENT_CHARS = 200  # of a token's comment in a reminder; `/tokens show` has it whole
# Findings worth an owner's attention in a reminder; the rest are for admins' reports.
OWNER_FINDINGS = (
    Finding.PRIVILEGED_SCOPE,
    Finding.RARE_API,
    Finding.NO_EXPIRY,
    Finding.JUNK_COMMENT,
    Finding.ALL_APIS,
)
AUTOSCOPE_STATE_WORDS = {
    "AUTOSCOPE_STATE_RUNNING": "observing",
    "AUTOSCOPE_STATE_COMPLETED": "narrowed",
    "AUTOSCOPE_STATE_BACKFILLED": "narrowed from history",
    "AUTOSCOPE_STATE_USER_SELECTED": "scopes set by hand",
    "AUTOSCOPE_STATE_DISABLED": "off",
    "AUTOSCOPE_STATE_API_NOT_COVERED": "uses an API no scope covers",
}


# ---------------------------------------------------------------------------------------------
# text helpers


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


# ---------------------------------------------------------------------------------------------
# one token


def token_section(item: ReminderItem, tz: str, now: datetime, for_admins: bool) -> SectionBlock:
    view, deadline = item.view, item.deadline
    lines = [
        f"*{escape(clip(view.comment, COMMENT_CHARS)) if view.comment else '_no comment_'}* · "
        f"{code(short_id(view.token_id))} "
        f"in *{escape(view.workspace)}*",
        f"{escape(_capitalised(deadline.action))} on *{local_time(deadline.due_at, tz)}* "
        f"({relative(deadline.due_at, now)})",
        _scope_line(item),
        f"Created {local_day(view.created_at, tz)} · last used {local_day(view.last_used_on, tz)}",
    ]
    if for_admins:
        owner = view.owner or view.owner_id or "unknown"
        lines.insert(1, f"Owner: {escape(owner)}" + (f" ({escape(item.note)})" if item.note else ""))
    text = "\n".join(line for line in lines if line)
    return section(text, block_id=f"{TOKEN_BLOCK_PREFIX}{item.reference}")


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _scope_line(item: ReminderItem) -> str:
    view = item.view
    line = f"Scopes: {scopes_text(view.scopes)}"
    state = AUTOSCOPE_STATE_WORDS.get(view.autoscope_state or "")
    if item.deadline.kind is DeadlineKind.AUTOSCOPE_ENFORCEMENT:
        line += f" → auto-scoping will keep {scopes_text(view.inferred_scopes)}"
    elif state:
        line += f" (auto-scoping: {state})"
    return line


def findings_context(item: ReminderItem) -> ContextBlock | None:
    shown = [f for f in item.view.evaluation.findings if f.code in OWNER_FINDINGS]
    if not shown:
        return None
    text = " · ".join(f":warning: *{FINDING_LABELS[f.code]}*: {escape(f.detail)}" for f in shown)
    return context(text)


def token_actions(item: ReminderItem) -> ActionsBlock:
    """The decision buttons; each carries only the opaque reference, resolved server-side."""
    value = item.reference
    kind = item.deadline.kind
    buttons = []
    if kind is DeadlineKind.AUTOSCOPE_ENFORCEMENT:
        buttons.append(
            ButtonElement(
                text="Confirm scopes", action_id=Action.CONFIRM_SCOPES, value=value, style="primary"
            )
        )
    buttons.append(ButtonElement(text="Accept", action_id=Action.ACCEPT, value=value))
    if kind is not DeadlineKind.AUTOSCOPE_ENFORCEMENT:
        buttons.append(ButtonElement(text="Extend", action_id=Action.EXTEND, value=value))
    buttons += [
        ButtonElement(
            text="Revoke",
            action_id=Action.REVOKE,
            value=value,
            style="danger",
            confirm=ConfirmObject(
                title="Revoke this token?",
                text=fit.fit(
                    f"Token {short_id(item.view.token_id)} in {item.view.workspace} stops working at once. "
                    "Jobs that use it will fail.",
                    fit.CONFIRM_TEXT,
                ),
                confirm="Revoke",
                deny="Keep it",
                style="danger",
            ),
        ),
        ButtonElement(text="Snooze a day", action_id=Action.SNOOZE, value=value),
        ButtonElement(text="Not mine", action_id=Action.NOT_MINE, value=value),
    ]
    return ActionsBlock(block_id=f"actions:{value}", elements=buttons)


def token_blocks(
    item: ReminderItem, tz: str, now: datetime, for_admins: bool, decided: Annotation | None = None
) -> list[Block]:
    """A token's section, its findings and its buttons; once decided, what was decided instead
    of the buttons (kept when the decision leaves room for another, e.g. a snooze or a failure)."""
    blocks: list[Block] = [token_section(item, tz, now, for_admins)]
    findings = findings_context(item)
    if findings is not None:
        blocks.append(findings)
    if decided is not None:
        blocks.append(context(decided.text, block_id=f"decided:{item.reference}"))
    if decided is None or decided.keep_buttons:
        blocks.append(token_actions(item))
    return blocks


# ---------------------------------------------------------------------------------------------
# the reminder message


@dataclass(frozen=True, slots=True)
class Annotation:
    """What was decided about one token of a message, shown in place of (or above) its buttons."""

    text: str
    keep_buttons: bool = False


def reminder_message(
    message: ReminderMessage, decided: Mapping[str, Annotation] | None = None
) -> tuple[str, list[Block]]:
    """(fallback text, blocks) of one reminder: every due token of one recipient, nearest first,
    grouped by what will happen; never more than one message holds (`budget.Budget`): the rest are
    counted and pointed to. `decided` maps item references to what was decided about them (the
    message is updated in place after each decision)."""
    decided = decided or {}
    recipient, now = message.recipient, message.now
    tz = recipient.tz
    items = sorted(message.items, key=lambda i: (i.deadline.due_at, i.view.workspace, i.view.token_id))
    count = len(items)
    nearest = items[0].deadline
    title, intro = _headline(message, count)
    blocks: list[Block] = [header(title), section(intro)]
    budget = Budget(spent=blocks)  # one block kept for the "more" line
    shown = 0
    for kind, group in groupby(sorted(items, key=_group_order(items)), key=lambda i: i.deadline.kind):
        heading = [section(f"*{DEADLINE_LABELS[kind]}*")]
        for item in group:
            item_blocks = token_blocks(item, tz, now, recipient.admins_channel, decided.get(item.reference))
            if not budget.take(heading + item_blocks):
                break
            blocks.extend(heading + item_blocks)
            heading = []
            shown += 1
    if shown < count:
        where = (
            "`/tokens upcoming` lists them all, `/tokens export` sends them as a file"
            if recipient.admins_channel
            else "type `/tokens mine` or open tokenbot's App Home to see them all"
        )
        rest = count - shown
        blocks.append(context(f"…and {rest} more token{'s' if rest != 1 else ''} due: {where}."))
    fallback = (
        f"{title}: {count} token{'s' if count != 1 else ''}, the first "
        f"{relative(nearest.due_at, now)} ({nearest.action})."
    )
    return fallback, blocks


def _group_order(items: Sequence[ReminderItem]):
    """Groups by deadline kind, the group with the nearest deadline first; nearest first inside."""
    first_due: dict[DeadlineKind, datetime] = {}
    for item in items:
        first_due.setdefault(item.deadline.kind, item.deadline.due_at)
    return lambda i: (first_due[i.deadline.kind], i.deadline.kind, i.deadline.due_at, i.view.token_id)


def _headline(message: ReminderMessage, count: int) -> tuple[str, str]:
    plural = "s" if count != 1 else ""
    if message.escalation and message.recipient.admins_channel:
        return (
            f"{count} token{plural} need an admin",
            "These tokens' deadlines are close and nobody has decided, or they have no owner "
            "who can be reached. Decide here, or find the owner.",
        )
    if message.recipient.admins_channel:
        return (
            f"{count} token{plural} without a reachable owner",
            "Nobody in Slack owns these tokens. Decide here, or assign an owner.",
        )
    return (
        f"{count} of your Databricks tokens will change soon" if count > 1
        else "Your Databricks token will change soon",
        "Databricks is about to act on these tokens. Decide now, before a job breaks: "
        "each button applies at once and is recorded.",
    )


# ---------------------------------------------------------------------------------------------
# plain text, for previews and logs


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


# ---------------------------------------------------------------------------------------------
# after a decision: feedback, approvals, hand-backs


def outcome_blocks(message: str, retry_reference: str | None = None) -> list[Block]:
    """The answer to the person who clicked (a service's plain message); a Retry button when
    Databricks failed."""
    blocks: list[Block] = [section(safe_text(message))]
    if retry_reference:
        blocks.append(
            ActionsBlock(
                elements=[ButtonElement(text="Retry", action_id=Action.RETRY, value=retry_reference)]
            )
        )
    return blocks


def approval_request(request_text: str, token_line: str, reference: str) -> tuple[str, list[Block]]:
    """Posted to the admins channel: a request only an admin may approve."""
    text = f"Approval needed: {request_text}"
    return text, [
        section(f":raised_hand: *Approval needed*\n{request_text}\n{token_line}"),
        ActionsBlock(
            block_id=f"approval:{reference}",
            elements=[
                ButtonElement(text="Approve", action_id=Action.APPROVE, value=reference, style="primary"),
                ButtonElement(text="Deny", action_id=Action.DENY, value=reference, style="danger"),
            ],
        ),
    ]


def owner_wanted(request_text: str, token_line: str, token_reference: str) -> tuple[str, list[Block]]:
    """Posted to the admins channel after "Not mine": pick the token's owner."""
    from slack_sdk.models.blocks import UserSelectElement

    text = f"Owner wanted: {request_text}"
    return text, [
        section(f":mag: *Owner wanted*\n{request_text}\n{token_line}"),
        ActionsBlock(
            block_id=f"assign:{token_reference}",
            elements=[
                UserSelectElement(action_id=Action.ASSIGN_OWNER, placeholder="Pick the owner"),
            ],
        ),
    ]


def resolved(original_text: str, outcome_text: str) -> list[Block]:
    """An approval or owner request once an admin has acted: the buttons go, the answer (a
    service's plain message) stays. `original_text` is the request's own mrkdwn."""
    return [section(original_text), context(safe_text(outcome_text))]


def token_line(view_workspace: str, token_id: str, comment: str) -> str:
    return f"{code(short_id(token_id))} in *{escape(view_workspace)}*" + (
        f" · {escape(clip(comment, COMMENT_CHARS))}" if comment else ""
    )
