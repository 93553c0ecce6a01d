"""A reminder: one section per token with its buttons, grouped by deadline kind, under a
headline; and what a decision adds to a token's section (`Annotation`) when the message is
redrawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import TYPE_CHECKING

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    SectionBlock,
)

from bot.domain.deadlines import DEADLINE_LABELS, DeadlineKind
from bot.domain.findings import FINDING_LABELS, Finding
from bot.slack.blocks import consumers, fit, shadow
from bot.slack.blocks.budget import MESSAGE_BLOCKS, Budget
from bot.slack.blocks.fit import clip, context, header, section
from bot.slack.blocks.text import code, escape, local_day, local_time, relative, scopes_text, short_id
from bot.slack.ids import TOKEN_BLOCK_PREFIX, Action

if TYPE_CHECKING:
    from bot.services.ports import ReminderItem, ReminderMessage

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
    if item.view.shadow is not None:  # its own block names the calls (bot/slack/blocks/shadow.py)
        shown = [f for f in shown if f.code not in shadow.SHADOW_FINDINGS]
    if not shown:
        return None
    text = " · ".join(f":warning: *{FINDING_LABELS[f.code]}*: {escape(f.detail)}" for f in shown)
    return context(text)


def token_actions(item: ReminderItem, now: datetime | None = None) -> ActionsBlock:
    """The decision buttons; each carries only the opaque reference, resolved server-side."""
    value = item.reference
    kind = item.deadline.kind
    used = consumers.revoke_warning(item.view.consumers, now, item.view.last_used_on) if now else ""
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
                    "Jobs that use it will fail. " + used,
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
    evidence = shadow.reminder_context(item.view)
    if evidence is not None:
        blocks.append(evidence)
    if (used_by := consumers.used_by_block(item.view.consumers, tz, now, item.view.last_used_on)) is not None:
        blocks.append(used_by)
    if decided is not None:
        blocks.append(context(decided.text, block_id=f"decided:{item.reference}"))
    if decided is None or decided.keep_buttons:
        blocks.append(token_actions(item, now))
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
    if all(item.deadline.kind is DeadlineKind.ORG_POLICY for item in message.items):
        # Each line says what passing the limit does: with `policy.enforce` off, nothing is revoked.
        return (
            f"{count} of your Databricks tokens reach a limit of the token policy" if count > 1
            else "Your Databricks token reaches a limit of the token policy",
            "Each token below says what happens when it reaches the limit. Decide here: "
            "each button applies at once and is recorded.",
        )
    return (
        f"{count} of your Databricks tokens will change soon" if count > 1
        else "Your Databricks token will change soon",
        "Databricks is about to act on these tokens. Decide now, before a job breaks: "
        "each button applies at once and is recorded.",
    )
