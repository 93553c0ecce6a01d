"""Pure Block Kit builders for the channel digest (`bot/services/digest.py`).

Nothing here talks to Slack. Owners are mentioned (`<@U123>`) when their Slack user is known, so
the digest reaches them; every other piece of user text is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING

from slack_sdk.models.blocks import (
    Block,
    DividerBlock,
    SectionBlock,
)

from bot import mentions
from bot.domain.deadlines import DEADLINE_LABELS, DeadlineKind
from bot.domain.findings import FINDING_LABELS
from bot.enums import DecisionAction, DecisionStatus
from bot.services.vocabulary import HORIZON_DAYS
from bot.slack.blocks import fit, text
from bot.slack.blocks.budget import MORE_LINE_TEXT, Budget
from bot.slack.blocks.fit import context, header, section
from bot.slack.blocks.text import code, escape, relative, short_id, zone

if TYPE_CHECKING:
    from bot.services.digest import Digest, DueToken, Extension, TokenRef

TOKENS_PER_KIND = 8  # tokens named per kind and day; the rest are counted
LINES_PER_SECTION = 15

VERBS = {
    DecisionAction.REVOKE: "revoked",
    DecisionAction.ROTATE: "rotated",
    DecisionAction.EXTEND: "extended",
    DecisionAction.CONFIRM_SCOPES: "set the scopes of",
    DecisionAction.RESTORE: "restored the scopes of",
    DecisionAction.ASSIGN_OWNER: "assigned an owner to",
    DecisionAction.ACCEPT: "accepted the deadline of",
}


# ---------------------------------------------------------------------------------------------
# helpers


def owner_text(token: TokenRef) -> str:
    if token.owner_slack_id:
        return f"<@{token.owner_slack_id}>"
    return escape(token.owner) if token.owner else "_no known owner_"


def token_text(token: TokenRef) -> str:
    label = f"{code(short_id(token.token_id))} in *{escape(token.workspace)}*"
    if token.comment:
        comment = " ".join(token.comment.split())
        label += f" ({escape(comment[:40] + ('…' if len(comment) > 40 else ''))})"
    return label


def day_text(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b}"


def moment_day(moment: datetime | None, tz: str) -> str:
    if moment is None:
        return "never"
    return day_text(moment.astimezone(zone(tz)).date())


def lines_section(title: str, lines: Sequence[str], more_hint: str = "") -> SectionBlock:
    shown = list(lines[:LINES_PER_SECTION])
    rest = len(lines) - len(shown)
    if rest:
        shown.append(f"…and {rest} more{more_hint}")
    return section(f"*{title}*\n" + "\n".join(shown))


# ---------------------------------------------------------------------------------------------
# the digest


def digest_message(digest: Digest) -> tuple[str, list[Block]]:
    """(fallback text, blocks): never more than one message holds (`budget.Budget`). The sections
    after the deadlines (overdue, unanswered, decisions, risky, failing syncs) have the first
    claim; the days fill what is left, and the days that do not fit are counted and pointed to."""
    tz = digest.tz
    today = digest.now.astimezone(zone(tz)).date()
    title = f"tokenbot digest · {day_text(today)} {today.year}"
    built: list[Block] = [
        header(title),
        context(f"Since {moment_day(digest.since, tz)} · days in {escape(tz)}"),
    ]
    fallback = f"tokenbot digest: {digest.summary()}"
    if digest.is_empty:
        built.append(
            section(
                f":white_check_mark: A quiet week: nothing due in the next {HORIZON_DAYS} days, "
                "no decisions, no new risky tokens, and every workspace synced."
            )
        )
        return fallback, built
    built.append(section(digest.summary()))
    heading = [DividerBlock(), section(f"*Deadlines in the next {HORIZON_DAYS} days*")]
    # kept: two "more" lines and the tail's divider
    budget = Budget(spent=built + heading, keep_blocks=3, keep_text=2 * MORE_LINE_TEXT)
    candidates = _tail_sections(digest)
    tail = [block for block in candidates if budget.take([block])]
    left_out = len(candidates) - len(tail)
    if left_out:
        tail.append(
            context(
                f"…and {left_out} more section{'s' if left_out != 1 else ''} that did not fit: "
                "`/tokens risky` and `/tokens upcoming` list them."
            )
        )
    if digest.days:
        built += heading
        shown = 0
        for group in digest.days:
            day = _day_section(group.day, group.by_kind, digest.now)
            if not budget.take([day]):
                break
            built.append(day)
            shown += 1
        hidden = sum(group.count for group in digest.days[shown:])
        if hidden:
            built.append(
                context(
                    f"…and {hidden} more deadline{'s' if hidden != 1 else ''} on later days: "
                    "`/tokens upcoming` lists them all, `/tokens export` sends them as a file."
                )
            )
    if tail:
        built.append(DividerBlock())
        built.extend(tail)
    return fallback, built


def _day_section(day: date, by_kind, now: datetime) -> SectionBlock:
    count = sum(len(tokens) for _, tokens in by_kind)
    lines = [f"*{day_text(day)}* · {count} deadline{'s' if count != 1 else ''}"]
    for kind, tokens in by_kind:
        named = ", ".join(f"{token_text(t.token)} {owner_text(t.token)}" for t in tokens[:TOKENS_PER_KIND])
        rest = len(tokens) - TOKENS_PER_KIND
        more = f", and {rest} more" if rest > 0 else ""
        lines.append(f"• {DEADLINE_LABELS[kind]} ({len(tokens)}): {named}{more}")
    return section("\n".join(lines))


def _tail_sections(digest: Digest) -> list[Block]:
    tz, now = digest.tz, digest.now
    sections: list[Block] = []
    if digest.overdue:
        sections.append(
            lines_section(
                ":rotating_light: Overdue under tokenbot's policy (enforcement is off: nothing revoked)",
                [_due_line(due, tz, now) for due in digest.overdue],
                ": `/tokens upcoming`",
            )
        )
    if digest.unanswered:
        sections.append(
            lines_section(
                "Owners who have not answered",
                [
                    f"• {owner_text(u.token)}: {token_text(u.token)}, {DEADLINE_LABELS[u.kind].lower()} "
                    f"on {moment_day(u.due_at, tz)} ({relative(u.due_at, now)}); "
                    f"escalated {moment_day(u.escalated_at, tz)}"
                    for u in digest.unanswered
                ],
            )
        )
    if digest.extensions:
        sections.extend(_extension_sections(digest))
    if digest.decision_counts or digest.refused:
        counts = [f"{action.replace('_', ' ')} {status} ×{n}" for action, status, n in digest.decision_counts]
        if digest.refused:
            counts.append(f"refused ×{digest.refused}")
        lines = [" · ".join(counts)] + [_decision_line(line, tz) for line in digest.decision_lines]
        sections.append(section(f"*Decisions since {moment_day(digest.since, tz)}*\n" + "\n".join(lines)))
    if digest.new_risky:
        sections.append(
            lines_section(
                "New risky tokens",
                [
                    f"• {token_text(r.token)} · {owner_text(r.token)} · "
                    + ", ".join(FINDING_LABELS[code_] for code_ in r.findings)
                    for r in digest.new_risky
                ],
                ": `/tokens risky`",
            )
        )
    if digest.failing_workspaces:
        sections.append(
            lines_section(
                ":warning: Workspaces failing to sync",
                [
                    f"• *{escape(w.name)}* ({w.status}, last good sync {moment_day(w.last_success_at, tz)})"
                    + (f": {escape(w.last_error[:300])}" if w.last_error else "")
                    for w in digest.failing_workspaces
                ],
            )
        )
    return sections


MAX_EXTENSION_SECTIONS = 4


def _extension_sections(digest: Digest) -> list[Block]:
    """Every extension, in as many sections as it takes (up to MAX_EXTENSION_SECTIONS)."""
    title = f"*Extensions since {moment_day(digest.since, digest.tz)}*"
    lines = [_extension_line(extension, digest.tz) for extension in digest.extensions]
    sections: list[Block] = []
    current = [title]
    for index, line in enumerate(lines):
        if len("\n".join([*current, line])) > fit.SECTION_TEXT - 40:
            if len(sections) == MAX_EXTENSION_SECTIONS - 1:
                current.append(f"…and {len(lines) - index} more")
                break
            sections.append(section("\n".join(current)))
            current = []
        current.append(line)
    sections.append(section("\n".join(current)))
    return sections


def _extension_line(extension: Extension, tz: str) -> str:
    asked = mentions.who(extension.requested_by)
    if extension.approved_by == extension.requested_by:
        approved = "approved by themselves"
    elif extension.approved_by:
        approved = f"approved by {mentions.who(extension.approved_by)}"
    else:
        approved = "not approved"
    known = extension.kind in set(DeadlineKind)
    what = f" ({DEADLINE_LABELS[DeadlineKind(extension.kind)].lower()})" if known else ""
    return (
        f"• {token_text(extension.token)}{what} until {moment_day(extension.until, tz)}: "
        f"asked by {asked}, {approved}"
    )


def _due_line(due: DueToken, tz: str, now: datetime) -> str:
    return (
        f"• {token_text(due.token)} · {owner_text(due.token)} · "
        f"{DEADLINE_LABELS[due.kind].lower()} {moment_day(due.due_at, tz)} ({relative(due.due_at, now)})"
    )


def _decision_line(line, tz: str) -> str:
    what = token_text(line.token) if line.token else "a token"
    when = moment_day(line.at, tz)
    if line.status == DecisionStatus.FAILED:
        error = f": {escape(line.error[:200])}" if line.error else ""
        return f"• :x: {line.action.replace('_', ' ')} of {what} failed ({when}){error}"
    verb = VERBS.get(line.action, line.action.replace("_", " "))
    return f"• {mentions.who(line.actor_slack_id)} {verb} {what} ({when})"


def as_text(built: Sequence[Block]) -> str:
    """The digest as readable text, for `tokenbot digest --dry-run`."""
    return text.as_text(built)
