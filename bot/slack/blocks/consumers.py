"""Who uses a token, where a decision is made: "Used by" under a reminder's token (three lines at
most, then "+N more"), every consumer in `/tokens show`, and the sentence of the Revoke
confirmation about the last 7 days. Client names that are unknown agents are user text: escaped
once here. When the audit log cannot speak (not read, stale, empty, behind) the words say so
instead of guessing."""

from __future__ import annotations

from datetime import datetime

from slack_sdk.models.blocks import ContextBlock

from bot.domain.clients import RECENT_DAYS, Consumer, Coverage, TokenConsumers
from bot.slack.blocks import fit
from bot.slack.blocks.fit import context
from bot.slack.blocks.text import escape, local_day

REMINDER_LINES = 3
NETWORKS_SHOWN = 2  # per line in a reminder; `/tokens show` has them all

UNAVAILABLE = {
    Coverage.NOT_READ: "usage data unavailable (the audit log is not read for this workspace)",
    Coverage.STALE: "usage data unavailable (the audit log was last read {read})",
    Coverage.EMPTY: "usage data unavailable (the audit log had no events)",
    Coverage.DELAYED: "usage data unavailable (the audit log is behind: its newest event is from {through})",
}


def _unavailable(consumers: TokenConsumers, tz: str) -> str:
    read = local_day(consumers.read_at, tz) if consumers.read_at else "never"
    through = local_day(consumers.through, tz) if consumers.through else "never"
    return UNAVAILABLE[consumers.coverage].format(read=read, through=through)


def consumer_line(consumer: Consumer, tz: str, networks: int | None = None) -> str:
    shown = consumer.networks if networks is None else consumer.networks[:networks]
    where = ", ".join(escape(n) for n in shown)
    if len(shown) < len(consumer.networks):
        where += f" +{len(consumer.networks) - len(shown)}"
    calls = f"{consumer.calls:,} call{'s' if consumer.calls != 1 else ''}"
    return (
        f"*{escape(consumer.client)}* from {where} · {calls} · "
        f"{local_day(consumer.first_seen, tz)} – {local_day(consumer.last_seen, tz)}"
    )


def _untied(last_used_on: datetime, tz: str) -> str:
    return (
        f"usage data unavailable (Databricks reports a use on {local_day(last_used_on, tz)} that the "
        "audit log ties to no login session)"
    )


def used_by_block(
    consumers: TokenConsumers | None, tz: str, now: datetime, last_used_on: datetime | None = None
) -> ContextBlock | None:
    """The reminder's "Used by": the most recent three, then "+N more"; nothing when not loaded."""
    if consumers is None:
        return None
    if not consumers.consumers:
        if consumers.coverage is not Coverage.OK:
            return context(f"Used by: {_unavailable(consumers, tz)}")
        if last_used_on is not None and consumers.unexplained_use(now, RECENT_DAYS, last_used_on):
            return context(f"Used by: {_untied(last_used_on, tz)}")
        return context("Used by: no use seen in the audit log's lookback window")
    lines = [consumer_line(c, tz, NETWORKS_SHOWN) for c in consumers.consumers[:REMINDER_LINES]]
    rest = len(consumers.consumers) - REMINDER_LINES
    if rest > 0:
        lines.append(f"+{rest} more (`/tokens show` lists them all)")
    return context(fit.fit("Used by:\n" + "\n".join(lines), fit.CONTEXT_TEXT))


def show_lines(consumers: TokenConsumers | None, tz: str) -> list[str]:
    """`/tokens show`: every consumer, every network."""
    if consumers is None or not consumers.consumers:
        if consumers is not None and consumers.coverage is Coverage.OK:
            return ["_no use seen in the audit log's lookback window_"]
        return [f"_{_unavailable(consumers, tz) if consumers else 'usage data unavailable'}_"]
    lines = [f"• {consumer_line(c, tz)}" for c in consumers.consumers]
    if consumers.coverage is not Coverage.OK:
        lines.append(f"_{_unavailable(consumers, tz)}: what it saw is listed_")
    return lines


def revoke_warning(
    consumers: TokenConsumers | None, now: datetime, last_used_on: datetime | None = None, tz: str = "UTC"
) -> str:
    """One sentence for the Revoke confirmation: who used it in the last 7 days, that nothing
    did, or that tokenbot cannot tell. Escaped mrkdwn."""
    if consumers is None:
        return ""
    recent = consumers.recent(now, RECENT_DAYS)
    if recent:
        names = ", ".join(escape(fit.clip(c.client, 40)) for c in recent[:4])
        more = f" and {len(recent) - 4} more" if len(recent) > 4 else ""
        return f"Used in the last {RECENT_DAYS} days by: {names}{more}."
    if consumers.knows_no_recent_use(now, RECENT_DAYS, last_used_on):
        return f"No use seen in the last {RECENT_DAYS} days."
    if consumers.coverage is Coverage.OK and last_used_on is not None:
        words = _untied(last_used_on, tz)
    else:
        words = _unavailable(consumers, tz)
    return words[:1].upper() + words[1:] + "."
