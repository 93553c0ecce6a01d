"""The admins channel's reminder (escalations, and tokens without a reachable owner): every token
in it is shown, none hidden behind "...and N more".

A message holds the nearest tokens that fit whole within Slack's limits (the reminder builder's
`budget.Budget`: 50 blocks, the text total); `admins_message` says which those are, the outbox
records only them as sent, and the rest go out in the next message (bot/services/outbox.py). The
admins must act on each of them, and `/tokens upcoming` does not list every one (an unowned
token's deadline may lie beyond its window)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from slack_sdk.models.blocks import Block

from bot.slack.blocks.fit import context
from bot.slack.blocks.reminders import reminder_message
from bot.slack.ids import TOKEN_BLOCK_PREFIX

if TYPE_CHECKING:
    from bot.services.ports import ReminderItem, ReminderMessage


def admins_message(message: ReminderMessage) -> tuple[str, list[Block], frozenset[int] | None]:
    """(fallback text, blocks, the notification ids shown) of the nearest items that fit whole;
    the ids are None when every item fits. At least one item is always shown."""
    items = sorted(message.items, key=_nearest_first)
    fitting = _longest_fit(message, items)
    text, built = reminder_message(replace(message, items=tuple(items[:fitting])))
    if fitting == len(items):
        return text, built, None
    built.append(_more(len(items) - fitting))
    shown = frozenset(item.notification_id for item in items[:fitting] if item.notification_id is not None)
    return text, built, shown


def admins_parts(message: ReminderMessage) -> list[list[Block]]:
    """Every message the admins channel gets for these items, in order (a dry run's preview)."""
    items, parts = sorted(message.items, key=_nearest_first), []
    while items:
        fitting = _longest_fit(message, items)
        _, built = reminder_message(replace(message, items=tuple(items[:fitting])))
        if fitting < len(items):
            built.append(_more(len(items) - fitting))
        parts.append(built)
        items = items[fitting:]
    return parts


def _more(rest: int):
    return context(f"…{rest} more token{'s' if rest != 1 else ''} follow in the next message.")


def _nearest_first(item: ReminderItem):
    return (item.deadline.due_at, item.view.workspace, item.view.token_id)


def _longest_fit(message: ReminderMessage, items: list[ReminderItem]) -> int:
    """The most items (nearest first) the reminder builder shows whole: a binary search, since
    fewer items never need more room."""
    if _all_shown(message, items):
        return len(items)
    low, high = 1, len(items) - 1  # one item always fits: its text is cut to Slack's limits
    while low < high:
        middle = (low + high + 1) // 2
        if _all_shown(message, items[:middle]):
            low = middle
        else:
            high = middle - 1
    return low


def _all_shown(message: ReminderMessage, items: list[ReminderItem]) -> bool:
    _, built = reminder_message(replace(message, items=tuple(items)))
    sections = sum(1 for block in built if (block.block_id or "").startswith(TOKEN_BLOCK_PREFIX))
    return sections == len(items)
