"""Pure Block Kit builder of the message sent after auto-scoping narrowed a token
(bot/services/narrowing.py): what it had, what it has now, the rarely used scopes it lost, and
the Restore scopes / Looks fine buttons. Tested without Slack, like the reminders (`reminders.py`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    SectionBlock,
)

from bot.domain.scopes import label_for
from bot.slack.blocks.budget import Budget
from bot.slack.blocks.fit import clip, context, header, section
from bot.slack.blocks.reminders import COMMENT_CHARS, Annotation
from bot.slack.blocks.text import code, escape, local_day, scopes_text, short_id
from bot.slack.ids import TOKEN_BLOCK_PREFIX, Action

if TYPE_CHECKING:
    from bot.services.narrowing import NarrowedMessage, NarrowedToken

LOOKS_FINE_MARK = ":ok_hand:"


def narrowed_message(
    message: NarrowedMessage, decided: Mapping[str, Annotation] | None = None
) -> tuple[str, list[Block]]:
    """(fallback text, blocks) of one recipient's narrowed tokens. `decided` maps a token's
    reference to what was decided about it (the message is updated in place)."""
    text, built, _ = narrowed_parts(message, decided)
    return text, built


def narrowed_parts(
    message: NarrowedMessage, decided: Mapping[str, Annotation] | None = None, *, continued: bool = False
) -> tuple[str, list[Block], frozenset[int] | None]:
    """`narrowed_message`, and the notification ids of the tokens it showed when it could not
    show them all (None: all shown). `continued`: the rest go out in the next message, so the
    last line says so instead of pointing elsewhere."""
    decided = decided or {}
    count = len(message.tokens)
    title, intro = _headline(message, count)
    blocks: list[Block] = [header(title), section(intro)]
    budget = Budget(spent=blocks)
    shown = 0
    for token in message.tokens:
        token_blocks = narrowed_token_blocks(
            token, message.recipient.tz, message.recipient.admins_channel, decided.get(token.reference)
        )
        if not budget.take(token_blocks):
            break
        blocks.extend(token_blocks)
        shown += 1
    if shown == count:
        return _fallback(message.tokens[0], count), blocks, None
    more = count - shown
    if continued:
        blocks.append(context(f"…{more} more narrowed token(s) follow in the next message."))
    else:
        blocks.append(
            context(
                f"…and {more} more narrowed token(s): `/tokens mine` or tokenbot's App Home shows "
                "each token's scopes, `/tokens show <token_id>` its history."
            )
        )
    ids = frozenset(t.notification_id for t in message.tokens[:shown] if t.notification_id is not None)
    return _fallback(message.tokens[0], count), blocks, ids


def narrowed_token_blocks(
    token: NarrowedToken, tz: str, for_admins: bool, decided: Annotation | None = None
) -> list[Block]:
    blocks: list[Block] = [_section(token, tz, for_admins), _evidence(token)]
    if decided is not None:
        blocks.append(context(decided.text, block_id=f"decided:{token.reference}"))
    buttons = _buttons(token, decided)
    if buttons:
        blocks.append(ActionsBlock(block_id=f"actions:{token.reference}", elements=buttons))
    return blocks


def _section(token: NarrowedToken, tz: str, for_admins: bool) -> SectionBlock:
    comment = escape(clip(token.comment, COMMENT_CHARS)) if token.comment else "_no comment_"
    lines = [
        f"*{comment}* · {code(short_id(token.token_id))} in *{escape(token.workspace)}*",
        f"Narrowed by auto-scoping on *{local_day(token.narrowed_at, tz)}*",
        f"Had: {_had(token)}",
        f"Has now: {_has(token)}",
    ]
    if for_admins:
        owner = escape(token.owner or "unknown")
        lines.insert(1, f"Owner: {owner}" + (f" ({escape(token.note)})" if token.note else ""))
    return section("\n".join(lines), block_id=f"{TOKEN_BLOCK_PREFIX}{token.reference}")


def _had(token: NarrowedToken) -> str:
    if not token.previous_scopes or "all-apis" in token.previous_scopes:
        return f"{scopes_text(token.previous_scopes)} (every API, while auto-scoping observed it)"
    return scopes_text(token.previous_scopes)


def _has(token: NarrowedToken) -> str:
    if token.calls_nothing:
        return "*no scope at all: it can call no API, so everything that uses it fails*"
    return scopes_text(token.scopes)


def _evidence(token: NarrowedToken) -> ContextBlock:
    if token.calls_nothing:
        text = (
            ":rotating_light: *This token can call nothing now.* Auto-scoping kept no scope, so every "
            "call with it is refused. Restore scopes pre-selects the scopes the audit log saw it use."
        )
    elif token.failing:
        text = (
            f":rotating_light: *A job is failing now*: the token lost {_uses(token.failing, 'used')}, "
            "called in the last 7 days. Restore it unless that use is over."
        )
    elif token.rare_lost:
        text = (
            f":rotating_light: *Lost a rarely used API*: {_uses(token.rare_lost, 'last used')}. "
            "Auto-scoping watched only 30 days: whatever still calls it will fail. Restore it unless "
            "that use is over."
        )
    elif token.usage_known:
        text = (
            f":white_check_mark: The audit log of the last {token.lookback_days} days shows no other API "
            "this token needs."
        )
    else:
        text = (
            ":grey_question: tokenbot does not read this workspace's audit log, so it cannot tell "
            "whether something rare needs more: check what uses this token."
        )
    if token.unmapped_services:
        services = ", ".join(code(s) for s in token.unmapped_services[:10])
        text += f" Also called, with no known scope: {services}."
    return context(text)


def _uses(days: Mapping[str, date], verb: str) -> str:
    return ", ".join(
        f"{code(scope)} ({escape(label_for(scope))}, {verb} {day.isoformat()})"
        for scope, day in sorted(days.items())
    )


def _buttons(token: NarrowedToken, decided: Annotation | None) -> list[ButtonElement]:
    restore = ButtonElement(
        text="Restore scopes",
        action_id=Action.RESTORE_SCOPES,
        value=token.reference,
        style="primary" if token.rare_lost or token.urgent else None,
    )
    looks_fine = ButtonElement(text="Looks fine", action_id=Action.LOOKS_FINE, value=token.reference)
    if decided is None or decided.keep_buttons:
        return [restore, looks_fine]
    if decided.text.startswith(LOOKS_FINE_MARK):
        return [restore]  # the owner may still need it later
    return []


def looks_fine_annotation(who: str, stamp: str) -> Annotation:
    """Shown once the owner said the narrowed token works; Restore scopes stays."""
    return Annotation(f"{LOOKS_FINE_MARK} Looks fine to {who} · {stamp}")


def _headline(message: NarrowedMessage, count: int) -> tuple[str, str]:
    plural = "s" if count != 1 else ""
    if message.recipient.admins_channel and any(t.urgent for t in message.tokens):
        return (
            f"{count} narrowed token{plural} need an admin now",
            "Auto-scoping narrowed these tokens and something may be failing now: a scope they lost "
            "was used in the last 7 days, or they can call nothing at all. Restore what is needed "
            "here; each token says whether its owner has heard.",
        )
    if message.recipient.admins_channel:
        return (
            f"{count} narrowed token{plural} without a reachable owner",
            "Auto-scoping narrowed these tokens and nobody in Slack owns them. Check them here.",
        )
    if count == 1:
        title = "Auto-scoping narrowed your Databricks token"
    else:
        title = f"Auto-scoping narrowed {count} of your Databricks tokens"
    return (
        title,
        "Databricks now lets each token below call only the APIs it saw in its 30-day observation "
        "window. If something rare needs more, restore it now; otherwise say it looks fine.",
    )


def _fallback(first: NarrowedToken, count: int) -> str:
    had = ", ".join(first.previous_scopes) or "full access"
    if first.calls_nothing:
        text = (
            f"Auto-scoping narrowed token {short_id(first.token_id)} in {first.workspace} to no scope "
            f"at all: it can call nothing now (it had {had})."
        )
    else:
        lost = f"; lost {', '.join(sorted(first.rare_lost))}, used rarely" if first.rare_lost else ""
        text = (
            f"Auto-scoping narrowed token {short_id(first.token_id)} in {first.workspace}: "
            f"had {had}, now {', '.join(first.scopes)}{lost}."
        )
    if count > 1:
        text += f" (and {count - 1} more)"
    return text
