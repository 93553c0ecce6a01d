"""Pure builder of the App Home tab (STYLE.md 3): `home_view(HomeData) -> View`.

Everyone sees their own tokens, nearest deadline first, with a reminder's buttons, and their
recent decisions. Admins see above that the deadlines of the next 14 days by kind, the
workspaces and how their last sync went, and the tokens waiting for an owner, each with a
picker. Never more than Slack's 100 blocks: what does not fit is counted and pointed to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    DividerBlock,
    MarkdownTextObject,
    SectionBlock,
    UserSelectElement,
)
from slack_sdk.models.views import View

from bot.domain.deadlines import DEADLINE_LABELS, DeadlineKind
from bot.slack.blocks.answers import line_sections
from bot.slack.blocks.budget import VIEW_BLOCKS, Budget
from bot.slack.blocks.commands import comment_text, token_ref
from bot.slack.blocks.fit import clip, context, header, section
from bot.slack.blocks.history import HistoryEntry, decision_line
from bot.slack.blocks.reminders import Annotation, token_blocks
from bot.slack.blocks.text import escape, local_time
from bot.slack.ids import Action

if TYPE_CHECKING:
    from bot.services.ports import ReminderItem
    from bot.services.report import TokenView

HOME_BLOCKS = VIEW_BLOCKS  # Slack's limit for a Home tab
HORIZON_DAYS = 14
SHOWN_WORKSPACES = 20  # two sections of ten
SHOWN_WAITING = 8
SHOWN_DECISIONS = 10


class WorkspaceFacts(Protocol):
    """What the admins' Home shows of a workspace (a `bot.models.Workspace` row has it all)."""

    name: str
    status: str  # never / ok / stale
    token_count: int | None
    last_sync_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class WaitingToken:
    """A token without an owner to ask: handed back with "Not mine", or a service principal's."""

    view: TokenView
    reference: str  # what the owner picker carries (references.for_token)
    why: str  # safe mrkdwn


@dataclass(frozen=True, slots=True)
class AdminOverview:
    due_counts: Mapping[DeadlineKind, int]  # deadlines in the next HORIZON_DAYS days, overdue ones included
    overdue: int
    workspaces: Sequence[WorkspaceFacts]
    waiting: Sequence[WaitingToken]  # the first of them, at least SHOWN_WAITING when there are more
    horizon_days: int = HORIZON_DAYS
    waiting_count: int | None = None  # how many in all, when `waiting` holds only the first


@dataclass(frozen=True, slots=True)
class HomeData:
    tz: str
    now: datetime
    items: Sequence[ReminderItem]  # the reader's tokens with a deadline, nearest first
    decided: Mapping[str, Annotation] = field(default_factory=dict)
    undated: Sequence[TokenView] = ()  # the reader's tokens with nothing scheduled
    recent: Sequence[HistoryEntry] = ()
    admin: AdminOverview | None = None


def home_view(data: HomeData) -> View:
    blocks: list[Block] = [header("tokenbot")]
    if data.admin is not None:
        blocks += admin_blocks(data.admin, data.tz)
    tail = recent_blocks(data.recent, data.tz)
    blocks.append(
        section(
            "*Your tokens*, nearest deadline first. Each button applies at once and is recorded."
            if data.items or data.undated
            else "*Your tokens*\nYou have no live Databricks tokens that tokenbot knows of."
        )
    )
    budget = Budget.for_view(spent=blocks + tail, keep_blocks=2)  # the "more" line and a divider
    shown = 0
    for item in data.items:
        built = token_blocks(item, data.tz, data.now, False, data.decided.get(item.reference))
        if not budget.take(built):
            break
        blocks += built
        shown += 1
    more = []
    if shown < len(data.items):
        more.append(f"{len(data.items) - shown} more with a deadline")
    if data.undated:
        names = ", ".join(token_ref(v) for v in data.undated[:5])
        more.append(
            f"{len(data.undated)} with nothing scheduled ({names}{', …' if len(data.undated) > 5 else ''})"
        )
    if more:
        blocks.append(context("And " + "; ".join(more) + ". Type `/tokens mine` to see them all."))
    blocks.append(DividerBlock())
    blocks += tail
    return View(type="home", blocks=blocks[:HOME_BLOCKS])


def admin_blocks(overview: AdminOverview, tz: str) -> list[Block]:
    """At most about 25 blocks: deadlines by kind, workspaces, tokens waiting for an owner."""
    total = sum(overview.due_counts.values())
    fields = [
        MarkdownTextObject(text=f"*{DEADLINE_LABELS[kind]}*\n{overview.due_counts.get(kind, 0)}")
        for kind in DeadlineKind
    ]
    if overview.overdue:
        fields.append(MarkdownTextObject(text=f"*Overdue*\n{overview.overdue}"))
    blocks: list[Block] = [
        section(
            f"*For admins*: {total} deadline{'s' if total != 1 else ''} in the next "
            f"{overview.horizon_days} days. `/tokens upcoming` lists them."
        ),
        SectionBlock(fields=fields),
    ]
    lines = [_workspace_line(w, tz) for w in overview.workspaces[:SHOWN_WORKSPACES]]
    for entry in line_sections(lines or ["_none synced yet_"], f"Workspaces ({len(overview.workspaces)})"):
        blocks += entry
    if len(overview.workspaces) > SHOWN_WORKSPACES:
        hidden = len(overview.workspaces) - SHOWN_WORKSPACES
        blocks.append(context(f"And {hidden} more workspaces: `tokenbot sync --json` reports on them all."))
    waiting = overview.waiting
    count = len(waiting) if overview.waiting_count is None else overview.waiting_count
    blocks.append(
        section(f"*Waiting for an owner* ({count})" + ("" if waiting else "\n_Every token has an owner._"))
    )
    for token in waiting[:SHOWN_WAITING]:
        view = token.view
        blocks.append(section(f"{token_ref(view)} · {comment_text(view)}\n{token.why}"))
        blocks.append(
            ActionsBlock(
                block_id=f"assign:{token.reference}",
                elements=[UserSelectElement(action_id=Action.ASSIGN_OWNER, placeholder="Pick the owner")],
            )
        )
    if count > SHOWN_WAITING:
        blocks.append(context(f"And {count - SHOWN_WAITING} more waiting for an owner."))
    blocks.append(DividerBlock())
    return blocks


def _workspace_line(workspace: WorkspaceFacts, tz: str) -> str:
    name = f"*{escape(workspace.name)}*"
    tokens = f" · {workspace.token_count} tokens" if workspace.token_count is not None else ""
    if workspace.status == "ok":
        synced = local_time(workspace.last_sync_at, tz) if workspace.last_sync_at else "?"
        return f"• :white_check_mark: {name} · synced {synced}{tokens}"
    if workspace.status == "never" or workspace.last_sync_at is None:
        return f"• :grey_question: {name} · never synced"
    good = local_time(workspace.last_success_at, tz) if workspace.last_success_at else "never"
    error = f": {escape(clip(workspace.last_error, 120))}" if workspace.last_error else ""
    return f"• :warning: {name} · last sync failed{error} · last good sync {good}{tokens}"


def recent_blocks(recent: Sequence[HistoryEntry], tz: str) -> list[Block]:
    lines = [decision_line(entry, tz) for entry in recent[:SHOWN_DECISIONS]]
    sections = line_sections(lines or ["_None yet._"], "Your recent decisions")
    return [block for entry in sections for block in entry]
