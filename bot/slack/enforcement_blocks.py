"""Pure Block Kit builders for what the enforcement job (`bot/services/enforcement.py`) tells an
owner whose token it revoked, and the admins channel after a run. (Overdue tokens escalated while
enforcement is off use the reminder builder, so they carry the decision buttons.)"""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import Block

from bot.services.enforcement import Enforced, EnforcementReport
from bot.slack.blocks import escape
from bot.slack.digest_blocks import lines_section, owner_text, token_text
from bot.slack.fit import context, section


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
    """To the admins channel: what one enforcement run revoked, failed to revoke, or held back."""
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
    if report.remaining:
        stopped = (
            f"Enforcement stopped: {report.remaining} more overdue token(s) wait, over the limit of "
            f"{report.limit} revocations per run"
        )
        parts.append(stopped)
        built.append(
            section(
                f":rotating_light: *{stopped}.*\nA bad sync or a bad rule can make everything look overdue: "
                "check the last sync and the policy (`/tokens upcoming`). If the list is right, the next "
                "runs go on at the same pace; raise `policy.max_revocations_per_run` to go faster, or "
                "set `policy.enforce = false` to stop."
            )
        )
    text = "; ".join(parts) + "."
    return text, built or [section(text)]
