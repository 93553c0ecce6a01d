"""Words for shadow enforcement (bot/domain/shadow.py): the calls narrowing would deny, in a reminder
(the first few), in `/tokens show` (all of them) and in the Confirm scopes modal (why each scope is
pre-selected); and, whenever the audit log is missing, failing or late, a line that says so."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from slack_sdk.models.blocks import Block, ContextBlock

from bot.domain.findings import Finding
from bot.domain.shadow import AuditFreshness, AuditState, DeniedCall, Shadow, Verdict
from bot.slack.blocks.fit import context
from bot.slack.blocks.text import code

if TYPE_CHECKING:
    from bot.services.report import TokenView

REMINDER_CALLS = 3  # calls named in a reminder; `/tokens show` lists them all
NO_SCOPE_HELPS = "no scope allows it: manual scopes will not help"
# The findings this module's blocks say in full where they are shown.
SHADOW_FINDINGS = frozenset({Finding.RARE_API, Finding.API_NOT_COVERED})


def call_text(call: DeniedCall) -> str:
    """ "`jobs.runNow` x3, last 2026-09-11" (and whose calls they were when not the token's own)."""
    text = f"{code(call.name)} x{call.calls}, last {call.last_seen.date().isoformat()}"
    return text + " _(by the owner, maybe with another token)_" if call.approximate else text


def call_line(call: DeniedCall) -> str:
    """One call with what would allow it."""
    if call.verdict is Verdict.DENIED:
        return f"{call_text(call)}: needs {code(call.scope or '')}"
    if call.verdict is Verdict.NOT_COVERED:
        return f"{call_text(call)}: {NO_SCOPE_HELPS}"
    return f"{call_text(call)}: tokenbot does not know which scope allows it"


def audit_caveat(audit: AuditFreshness, lookback_days: int) -> str | None:
    """What is missing or late in the audit log, or None when the evidence is fresh."""
    read = audit.read_at.date().isoformat() if audit.read_at else None
    state = audit.state
    if state is AuditState.FRESH:
        return None
    if state is AuditState.NOT_READ:
        return (
            "The audit log of this workspace is not read (no `audit_warehouse_id`, or no "
            "`tokenbot usage refresh` yet): tokenbot cannot tell which calls narrowing would deny."
        )
    if state is AuditState.FAILED:
        failed = audit.failed_at.date().isoformat() if audit.failed_at else "recently"
        since = f"; shown: the read of {read}" if read else ": nothing to show"
        return f"The audit log read of {failed} failed{since}. Calls since are not counted."
    if state is AuditState.STALE:
        return f"The audit log was last read {read}: calls since are not counted."
    if state is AuditState.EMPTY:
        return (
            f"The audit log read on {read} held no event in the last {lookback_days} days "
            "(is `system.access.audit` enabled?): tokenbot cannot tell which calls narrowing would deny."
        )
    newest = audit.newest_event_at.date().isoformat() if audit.newest_event_at else "unknown"
    return f"The audit log is late: its newest event is from {newest}. Calls since are not counted."


def _headline(shadow: Shadow) -> str:
    kept = ", ".join(code(s) for s in shadow.kept) or "_no scope_"
    days = shadow.lookback_days
    return f":no_entry: *Narrowing would deny* (auto-scoping keeps {kept}; audit log, {days} days):"


def reminder_context(view: TokenView) -> ContextBlock | None:
    """The first few calls narrowing would deny, or why tokenbot cannot tell; None when nothing
    would be denied on fresh evidence (or the token is not in observation)."""
    shadow = view.shadow
    if shadow is None:
        return None
    caveat = audit_caveat(shadow.audit, shadow.lookback_days)
    if not shadow.calls:
        return context(f":grey_question: {caveat}") if caveat else None
    lines = [_headline(shadow), *(call_line(c) for c in shadow.calls[:REMINDER_CALLS])]
    rest = len(shadow.calls) - REMINDER_CALLS
    if rest > 0:
        lines.append(f"…and {rest} more: {code('/tokens show ' + view.token_id[:10])} lists them all")
    if caveat:
        lines.append(caveat)
    return context("\n".join(lines))


def show_lines(view: TokenView) -> tuple[str, list[str]] | None:
    """(heading, lines) for `/tokens show`: every call narrowing would deny, and any caveat."""
    shadow = view.shadow
    if shadow is None:
        return None
    lines = [f"• {call_line(c)}" for c in shadow.calls]
    caveat = audit_caveat(shadow.audit, shadow.lookback_days)
    if caveat:
        lines.append(f":grey_question: {caveat}")
    if not lines:
        lines = [f"_nothing: every call of the last {shadow.lookback_days} days is allowed by what it keeps_"]
    kept = ", ".join(shadow.kept) or "no scope"
    return f"Narrowing would deny ({len(shadow.calls)}; auto-scoping keeps {kept})", lines


def modal_reasons(view: TokenView, preselected: Sequence[str]) -> list[Block]:
    """Why each scope is pre-selected in Confirm scopes: seen by auto-scoping, or needed by a call
    narrowing would deny (`jobs — jobs.runNow x3, last 2026-09-11`); then calls no scope allows."""
    shadow = view.shadow
    if shadow is None:
        return []
    reasons = shadow.reasons()
    lines = []
    for scope in preselected:
        if scope in reasons:
            lines.append(f"• {code(scope)}: " + "; ".join(call_text(c) for c in reasons[scope]))
        elif scope in shadow.kept:
            lines.append(f"• {code(scope)}: seen by auto-scoping")
    uncovered = shadow.of(Verdict.NOT_COVERED)
    if uncovered:
        lines.append(":warning: " + "; ".join(call_text(c) for c in uncovered) + f": {NO_SCOPE_HELPS}")
    caveat = audit_caveat(shadow.audit, shadow.lookback_days)
    if caveat:
        lines.append(f":grey_question: {caveat}")
    if not lines:
        return []
    return [context("*Why these scopes*\n" + "\n".join(lines))]
