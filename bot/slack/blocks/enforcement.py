"""Pure Block Kit builders for what the enforcement job (`bot/services/enforcement.py`) tells an
owner whose token it revoked, and the admins channel after a run. (Overdue tokens escalated while
enforcement is off use the reminder builder, so they carry the decision buttons.)"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from slack_sdk.models.blocks import Block

from bot.services.vocabulary import HeldReason
from bot.slack.blocks.answers import Answer, person, plain
from bot.slack.blocks.digest import lines_section, owner_text, token_text
from bot.slack.blocks.fit import context, section
from bot.slack.blocks.text import escape, escape_entities
from bot.slack.ids import COMMAND

if TYPE_CHECKING:
    from bot.domain.policy import Policy
    from bot.services.breaker import BreakerState, ResumeOutcome
    from bot.services.enforcement import Enforced, EnforcementReport, HeldReport


def _enforced_line(item: Enforced, with_owner: bool) -> str:
    owner = f" · {owner_text(item.token)}" if with_owner else ""
    return f"• {token_text(item.token)}{owner}: {escape(item.rule)}"


def owner_revoked(items: Sequence[Enforced]) -> tuple[str, list[Block]]:
    """To the owner: which of their tokens tokenbot revoked, and by which rule."""
    plural = "s" if len(items) != 1 else ""
    text = f"tokenbot revoked {len(items)} of your Databricks token{plural} under your organisation's policy"
    lines = [_enforced_line(item, with_owner=False) for item in items]
    return text, [
        section(
            f":lock: *{text}.*\nThe deadline passed with no decision and no exemption.\n" + "\n".join(lines)
        ),
        context(
            "Jobs that used these tokens now fail: create a new token (with only the scopes "
            "it needs) and ask an admin if you need an exemption next time."
        ),
    ]


def admins_report(report: EnforcementReport) -> tuple[str, list[Block]]:
    """To the admins channel: what one enforcement run revoked or failed to revoke."""
    count = len(report.revoked)
    if report.dry_run:
        done = f"Dry run: tokenbot would have revoked {count} token(s) under its policy; nothing was changed"
    else:
        done = f"tokenbot revoked {count} token(s) under its policy"
    parts = [done] + ([f"{len(report.failed)} could not be revoked"] if report.failed else [])
    built: list[Block] = []
    if report.revoked:
        built.append(
            lines_section(f":lock: {done}", [_enforced_line(i, with_owner=True) for i in report.revoked])
        )
    if report.failed:
        built.append(
            lines_section(
                ":x: Could not revoke",
                [f"{_enforced_line(i, with_owner=True)} ({escape(i.message)})" for i in report.failed],
            )
        )
    text = "; ".join(parts) + "."
    return text, built or [section(text)]


def admins_held(report: HeldReport) -> tuple[str, list[Block]]:
    """To the admins channel: a guard stopped a whole run (the clock, the breaker), and what it held."""
    count = len(report.tokens)
    dry = " (dry run)" if report.dry_run else ""
    if report.reason is HeldReason.CLOCK_SKEW:
        text = (
            f"Enforcement held{dry}: the clock cannot be trusted, so none of {count} overdue token(s) "
            "was revoked"
        )
        advice = (
            "Deadlines are computed from the local clock; a wrong clock makes tokens look overdue. Fix the "
            "server's time (NTP); enforcement goes on by itself once the clocks agree within five minutes."
        )
    else:
        text = f"Enforcement breaker tripped{dry}: none of {count} due token(s) was revoked"
        advice = (
            "A bad sync or a bad rule can make everything look due: check the last sync and the policy "
            f"(`{COMMAND} upcoming`). Enforcement stays off until an admin runs "
            f"`{COMMAND} enforcement resume`; `{COMMAND} enforcement status` shows the breaker."
        )
    lines = [_enforced_line(item, with_owner=True) for item in report.tokens]
    heading = "Would have been revoked" if report.reason is HeldReason.BREAKER else "Held back"
    return text + ".", [
        section(f":rotating_light: *{escape(text)}.*\n{escape_entities(report.why)}.\n{advice}"),
        lines_section(heading, lines, " (`tokenbot enforce --dry-run` lists them all)"),
    ]


# ---------------------------------------------------------------------------------------------
# /tokens enforcement status|resume


def _when(moment: datetime | None) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if moment else "never"


def breaker_status(state: BreakerState, policy: Policy) -> Answer:
    """Armed or tripped, why and since when, and the revocations of the last 24 hours."""
    limits = (
        f"Limits: {policy.max_revocations_per_run} per run, {policy.max_revocations_per_day} per 24 hours; "
        f"never a token used within {policy.enforce_min_idle_days} days. "
        f"Enforcement is {'on' if policy.enforce else 'off'} (`policy.enforce`)."
    )
    revoked = f"Revoked by enforcement in the last 24 hours: {state.revoked_last_day}."
    if state.tripped:
        text = f"The enforcement breaker is tripped (since {_when(state.since)})"
        lines = [
            f":rotating_light: *{text}.*",
            f"Why: {escape_entities(state.why or 'no reason recorded')}.",
            revoked,
            f"Nothing is revoked until an admin runs `{COMMAND} enforcement resume`.",
            limits,
        ]
    else:
        since = f" (re-armed by {person(state.by)} {_when(state.since)})" if state.since else ""
        text = "The enforcement breaker is armed"
        lines = [f":white_check_mark: *{text}*{since}.", revoked, limits]
    return Answer(text, [section("\n".join(lines))])


def breaker_resumed(outcome: ResumeOutcome, policy: Policy) -> Answer:
    if outcome.reason == "not_admin":
        return plain("Only tokenbot admins can resume enforcement; nothing changed.")
    if outcome.reason == "not_tripped":
        return plain("The enforcement breaker is not tripped: there is nothing to resume.")
    return plain(
        "Enforcement resumed: the breaker is armed again, and the next hourly run (or `tokenbot enforce`) "
        f"revokes what is due, up to {policy.max_revocations_per_run} per run and "
        f"{policy.max_revocations_per_day} per 24 hours."
    )
