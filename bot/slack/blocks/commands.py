"""The answers of the `/tokens` subcommands (STYLE.md 3): data in, `Answer` out (see `answers`
for what an answer is made of and how it pages). User text (comments, reasons, what was typed) is
always escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, ConfirmObject

from bot.domain.deadlines import DEADLINE_LABELS, Deadline, DeadlineKind
from bot.domain.findings import FINDING_LABELS
from bot.domain.policy import Policy
from bot.services.vocabulary import MatchReason
from bot.slack.blocks import consumers, fit, shadow
from bot.slack.blocks.answers import (
    LINES_PER_SECTION,
    PAGE_BLOCKS,
    SLACK_USER,
    Answer,
    Page,
    line_sections,
    listed,
    paged,
    person,
    plain,
    plural,
)
from bot.slack.blocks.fit import clip
from bot.slack.blocks.history import HistoryEntry, decision_line
from bot.slack.blocks.reminders import AUTOSCOPE_STATE_WORDS, Annotation, token_blocks
from bot.slack.blocks.text import (
    code,
    escape,
    local_day,
    local_time,
    relative,
    safe_text,
    scopes_text,
    short_id,
    zone,
)
from bot.slack.ids import COMMAND, Action

if TYPE_CHECKING:
    from bot.config import SlackConfig
    from bot.services.ports import ReminderItem, SlackUser
    from bot.services.report import TokenView

COMMENT_CHARS = 60


def token_ref(view: TokenView) -> str:
    return f"{code(short_id(view.token_id))} in *{escape(view.workspace)}*"


def owner_text(view: TokenView) -> str:
    if view.owner_slack_id and SLACK_USER.match(view.owner_slack_id):
        return f"<@{view.owner_slack_id}>"
    if view.owner or view.owner_id:
        return escape(view.owner or view.owner_id or "")
    return "_no owner_"


def comment_text(view: TokenView) -> str:
    return f"“{escape(clip(view.comment, COMMENT_CHARS))}”" if view.comment.strip() else "_no comment_"


_section = fit.section
_context = fit.context


# ---------------------------------------------------------------------------------------------
# mine


def mine(
    items: Sequence[ReminderItem],
    decided: Mapping[str, Annotation],
    undated: Sequence[TokenView],
    tz: str,
    now: datetime,
    page: Page,
) -> Answer:
    """The caller's tokens, nearest deadline first, each with a reminder's buttons."""
    count = len(items) + len(undated)
    if not count:
        return plain("You have no live Databricks tokens that tokenbot knows of.")
    title: list[Block] = [
        fit.header(f"Your {plural(count, 'Databricks token')}"),
        _context(
            "Nearest deadline first. Each button applies at once and is recorded; "
            f"times in {escape(zone(tz).key)}."
        ),
    ]
    entries = [token_blocks(item, tz, now, False, decided.get(item.reference)) for item in items]
    if undated:
        lines = [f"• {token_ref(v)} · {comment_text(v)}" for v in undated]
        entries += line_sections(lines, "Nothing scheduled for these")
    return paged(title, entries, page, f"Your {plural(count, 'token')}")


# ---------------------------------------------------------------------------------------------
# upcoming


def upcoming(
    rows: Sequence[tuple[Deadline, TokenView]],
    days: int,
    workspace: str | None,
    tz: str,
    now: datetime,
    page: Page,
    totals: DueTotals | None = None,
) -> Answer:
    """Deadlines in the next `days` days (overdue ones first), grouped by day in the reader's zone.
    `rows` may be the first of them only, in order, when `totals` counts them all."""
    where = f" in {escape(workspace)}" if workspace else ""
    if not rows:
        return plain(f"Nothing is due in the next {plural(days, 'day')}{where}.")
    rows = sorted(rows, key=lambda r: (r[0].due_at, r[1].workspace, r[1].token_id))
    if totals is None:
        counts: dict[DeadlineKind, int] = {}
        for deadline, _ in rows:
            counts[deadline.kind] = counts.get(deadline.kind, 0) + 1
        totals = DueTotals(counts, len({v.pk for _, v in rows}))
    summary = listed([f"{n} {DEADLINE_LABELS[kind].lower()}" for kind, n in totals.counts.items()])
    deadlines = sum(totals.counts.values())
    title: list[Block] = [
        fit.header(f"Deadlines in the next {plural(days, 'day')}{where}"),
        _context(
            f"{plural(deadlines, 'deadline')} on {plural(totals.tokens, 'token')}: "
            f"{summary}. Times in {escape(zone(tz).key)}."
        ),
    ]
    local = zone(tz)

    def day(row: tuple[Deadline, TokenView]) -> str:
        due = row[0].due_at
        if due <= now:
            return "Overdue"
        moment = due.astimezone(local)
        return f"{moment:%a} {moment.day} {moment:%b %Y}"

    entries: list[list[Block]] = []
    for heading, group in groupby(rows, key=day):
        group_rows = list(group)
        lines = [
            f"• {d.due_at.astimezone(local):%H:%M} · {DEADLINE_LABELS[d.kind]} · {token_ref(v)} · "
            f"{owner_text(v)} · {comment_text(v)}"
            for d, v in group_rows
        ]
        entries += line_sections(lines, f"{heading} · {plural(len(group_rows), 'deadline')}")
    more = (len(rows), deadlines - len(rows))
    return paged(
        title, entries, page, f"{plural(deadlines, 'deadline')} in the next {days} days{where}", more=more
    )


@dataclass(frozen=True, slots=True)
class DueTotals:
    """Deadlines counted over all tokens, by kind in the order the first of each comes."""

    counts: Mapping[DeadlineKind, int]
    tokens: int


ROWS_PER_PAGE = PAGE_BLOCKS * LINES_PER_SECTION  # no page of a list holds more rows than this
WHOLE_LISTS = 2000  # rows: a list this long is read whole, so its page count is exact


def rows_through(page: Page) -> int:
    """What a listener reads of a list longer than WHOLE_LISTS: the rows the pages up to `page`
    can hold, and one more to know a next page exists."""
    return max(page.number, 1) * ROWS_PER_PAGE + 1


# ---------------------------------------------------------------------------------------------
# risky, stale


def risky(views: Sequence[TokenView], page: Page, total: int | None = None) -> Answer:
    """Tokens with findings, in the order given (worst first): all of them, or the first of
    `total`."""
    if not views:
        return plain("No live token has a finding: nothing risky to show.")
    total = len(views) if total is None else total
    title: list[Block] = [
        fit.header(f"{plural(total, 'token')} with findings, worst first"),
    ]
    lines = [
        f"• {token_ref(v)} · {owner_text(v)} · {comment_text(v)}\n"
        f"    :warning: {', '.join(FINDING_LABELS[f.code] for f in v.evaluation.findings)}"
        for v in views
    ]
    more = (len(views), total - len(views))
    return paged(title, line_sections(lines), page, f"{plural(total, 'risky token')}", more=more)


def stale(
    views: Sequence[TokenView], days: int, now: datetime, page: Page, total: int | None = None
) -> Answer:
    """Tokens unused for `days` days, the longest unused first: all of them, or the first of
    `total`."""
    if not views:
        return plain(f"Every live token was used in the last {plural(days, 'day')}.")
    total = len(views) if total is None else total
    title: list[Block] = [
        fit.header(f"{plural(total, 'token')} unused for {days} days or more"),
    ]

    def used(view: TokenView) -> str:
        if view.last_used_on is None:
            return f"never used (created {local_day(view.created_at, 'UTC')})"
        return f"last used {local_day(view.last_used_on, 'UTC')} ({(now - view.last_used_on).days} days ago)"

    lines = [f"• {token_ref(v)} · {owner_text(v)} · {comment_text(v)} · {used(v)}" for v in views]
    more = (len(views), total - len(views))
    return paged(title, line_sections(lines), page, f"{plural(total, 'stale token')}", more=more)


# ---------------------------------------------------------------------------------------------
# show


def show(
    view: TokenView,
    history: Sequence[HistoryEntry],
    gone: str | None,
    tz: str,
    now: datetime,
    page: Page,
) -> Answer:
    """One token: who owns it, its scopes and times, deadlines, findings, every decision."""
    owner = owner_text(view)
    known_as = [clip(n, 80) for n in (view.owner_name, view.owner or view.owner_id) if n]
    if owner.startswith("<@") and known_as:
        owner += f" ({escape(', '.join(known_as))})"
    elif view.owner_name:
        owner += f" ({escape(clip(view.owner_name, 80))}), nobody in Slack"
    facts = [
        f"*{escape(clip(view.comment, 200)) if view.comment.strip() else '_no comment_'}*",
        f"Token {code(view.token_id)} in *{escape(view.workspace)}*",
        f"Owner: {owner}" + (" · service principal" if view.owner_kind == "service_principal" else ""),
        f"Scopes: {scopes_text(view.scopes)}"
        + (f" · auto-scoping observed {scopes_text(view.inferred_scopes)}" if view.inferred_scopes else ""),
        f"Auto-scoping: {escape(_autoscope_words(view.autoscope_state))}",
        f"Created {local_day(view.created_at, tz)} · expires {local_day(view.expires_at, tz)} · "
        f"last used {local_day(view.last_used_on, tz)}",
    ]
    if gone:
        facts.insert(0, f":no_entry: {gone}")
    title: list[Block] = [_section("\n".join(facts))]
    deadlines = [
        f"• *{DEADLINE_LABELS[d.kind]}* {local_time(d.due_at, tz)} ({relative(d.due_at, now)}): "
        f"{escape(d.action)}. {escape(d.reason)}"
        for d in view.evaluation.deadlines
    ]
    findings = [
        f"• :warning: *{FINDING_LABELS[f.code]}*: {escape(f.detail)}" for f in view.evaluation.findings
    ]
    entries = line_sections(deadlines or ["_none scheduled_"], "Deadlines")
    entries += line_sections(findings or ["_none_"], "Findings")
    denied = shadow.show_lines(view)
    if denied is not None:
        entries += line_sections(denied[1], denied[0])
    entries += line_sections(consumers.show_lines(view.consumers, tz), "Used by")
    lines = [decision_line(entry, tz, with_token=False) for entry in history]
    entries += line_sections(lines or ["_no decision yet_"], f"Decisions ({len(history)}, newest first)")
    return paged(title, entries, page, f"Token {short_id(view.token_id)} in {view.workspace}")


def _autoscope_words(state: str | None) -> str:
    return AUTOSCOPE_STATE_WORDS.get(state or "", state or "not reported")


# ---------------------------------------------------------------------------------------------
# revoke, sync, policy


REASON_BLOCK_PREFIX = "reason:"


def _quoted(reason: str, limit: int = 240) -> str:
    """The reason, URL-quoted (no markup characters) and short enough for a block id (255)."""
    while len(quote(reason)) > limit:
        reason = reason[:-1]
    return quote(reason)


def revoke_confirmation(view: TokenView, reason: str, reference: str, now: datetime) -> Answer:
    """What will be revoked, and the button (with Slack's own "are you sure?") that does it."""
    used = consumers.revoke_warning(view.consumers, now, view.last_used_on)
    text = (
        f"Revoke {token_ref(view)} ({comment_text(view)}), owned by {owner_text(view)}?\n"
        f"Reason: “{escape(clip(reason, 300))}”\n"
        + (f"{used}\n" if used else "")
        + "Jobs that use it fail at once. Nothing happens until you press *Revoke*."
    )
    button = ButtonElement(
        text="Revoke",
        action_id=Action.REVOKE,
        value=reference,
        style="danger",
        confirm=ConfirmObject(
            title="Revoke this token?",
            text=fit.fit(
                f"Token {short_id(view.token_id)} in {clip(view.workspace, 100)} stops working at "
                f"once. Jobs that use it will fail. {used}",
                fit.CONFIRM_TEXT,
            ),
            confirm="Revoke",
            deny="Keep it",
            style="danger",
        ),
    )
    return Answer(
        f"Revoke token {short_id(view.token_id)} in {escape(view.workspace)}? Press Revoke to confirm.",
        # The admin's own reason rides back in the block id (a note, not trusted for anything else).
        [
            _section(text),
            ActionsBlock(block_id=f"{REASON_BLOCK_PREFIX}{_quoted(reason)}", elements=[button]),
        ],
    )


def sync_done(lines: Sequence[str], failed: int) -> Answer:
    head = "Sync done." if not failed else f"Sync done; {plural(failed, 'workspace')} failed."
    body = "\n".join(f"• {escape(line)}" for line in lines) or "_no workspace is configured_"
    return Answer(head, [_section(f"*{head}*"), *[e[0] for e in line_sections(body.split("\n"))]])


def policy_answer(policy: Policy, slack: SlackConfig, dry_run: bool) -> Answer:
    """The policy in force, in plain words."""
    steps = listed([str(d) for d in sorted(policy.reminder_days, reverse=True)])
    quiet = (
        ", at any hour"
        if policy.quiet_window() is None
        else f", never during quiet hours ({escape(policy.quiet_hours)} in the owner's time zone)"
    )
    admins = f" in <#{slack.admin_channel}>" if slack.admin_channel else ""
    lines = [
        f"*Reminders.* Each token's owner gets a direct message {steps} days before anything happens "
        f"to the token{quiet}. Undecided tokens go to the admins{admins} "
        f"{plural(policy.escalate_after_days, 'day')} before the deadline, and so do tokens "
        "whose owner cannot be found in Slack.",
        f"*What Databricks does.* Auto-scoping watches a token for {policy.autoscope_observation_days} "
        "days, then narrows it to the scopes it used. Tokens unused for "
        f"{policy.inactivity_revocation_days} days are revoked. A token stops working when it expires; "
        "its lifetime cannot be lengthened.",
    ]
    rules = []
    if policy.org_max_inactive_days:
        rules.append(f"tokens unused for {policy.org_max_inactive_days} days")
    if policy.org_max_lifetime_days:
        rules.append(f"tokens older than {policy.org_max_lifetime_days} days")
    if rules:
        enforce = (
            f"tokenbot revokes them itself when the deadline passes with no decision, never one used "
            f"in the last {policy.enforce_min_idle_days} days; with more than "
            f"{policy.max_revocations_per_run} due at once, or {policy.max_revocations_per_day} in 24 hours, "
            "it revokes none and waits for an admin."
            if policy.enforce
            else "tokenbot does not revoke them itself (`policy.enforce` is off): "
            "overdue ones go to the admins."
        )
        lines.append(
            f"*The organisation's own policy.* {listed(rules).capitalize()} are due for revocation. {enforce}"
        )
    else:
        lines.append("*The organisation's own policy.* None: tokenbot only warns about what Databricks does.")
    lines.append(
        f"*Extensions.* An owner can put off the organisation's deadline by up to "
        f"{plural(policy.max_extension_days, 'day')} at once and "
        f"{plural(policy.max_total_extension_days, 'day')} past the original deadline in all; longer "
        "needs an admin, and the digest lists every extension. "
        "Scopes chosen by hand that include `authentication` or `all-apis` need an admin too."
    )
    if policy.junk_comment_patterns:
        lines.append(
            "*Unclear comments* (flagged): " + ", ".join(code(p) for p in policy.junk_comment_patterns) + "."
        )
    digest = (
        f"posted to <#{slack.digest_channel}> on {code(slack.digest_cron)} "
        f"({escape(slack.digest_timezone)})"
        if slack.digest_channel
        else "off (no `slack.digest_channel`)"
    )
    lines.append(
        f"*Inventory and digest.* Databricks is read every {policy.sync_interval_minutes} minutes; "
        f"the digest is {digest}."
    )
    if dry_run:
        lines.append(":test_tube: *Dry run is on*: decisions are recorded but nothing changes in Databricks.")
    return Answer(
        "The token policy in force", [fit.header("The token policy in force"), *map(_section, lines)]
    )


def by_severity_key(view: TokenView, severity: Mapping[Any, int]) -> tuple[int, int, str, str]:
    """Worst finding first, then more findings first."""
    ranks = [severity[f.code] for f in view.evaluation.findings]
    return (min(ranks, default=len(severity)), -len(ranks), view.workspace, view.token_id)


def unused_since(view: TokenView, now: datetime, days: int) -> bool:
    """Unused for at least `days` days: last used that long ago, or never used and that old."""
    limit = now - timedelta(days=days)
    if view.last_used_on is not None:
        return view.last_used_on <= limit
    return view.created_at is not None and view.created_at <= limit


@dataclass(frozen=True, slots=True)
class WhoisMatch:
    """A principal a Slack user is matched to (`/tokens whois`)."""

    workspace: str
    kind: str | None
    name: str  # the email, or a service principal's application id
    display_name: str | None
    reason: MatchReason


def _why(match: WhoisMatch, slack_email: str | None) -> str:
    if match.reason is MatchReason.MAPPED_DOMAIN:
        slack_domain = (slack_email or "").rpartition("@")[2]
        return (
            f"an email at a mapped domain (`slack.email_domains_map`: {code(slack_domain)} → "
            f"{code(match.name.rpartition('@')[2].lower())})"
        )
    return WHY[match.reason]


def whois(user_id: str, user: SlackUser | None, matches: Sequence[WhoisMatch], page: Page) -> Answer:
    who = person(user_id)
    if user is None:
        return plain(f"Slack knows no user {who}.")
    about = f"{who} ({code(user.email) if user.email else 'no email in Slack'}"
    about += ", deactivated in Slack)" if user.deleted else ", a bot)" if user.is_bot else ")"
    if not matches:
        return plain(
            f"{about} is matched to no Databricks principal. tokenbot matches people by the email of "
            f"their Slack profile (case aside, and `slack.email_domains_map`); an admin can give a token "
            f"to them with `{COMMAND} owner`."
        )
    lines = [
        f"• *{escape(m.workspace)}* · {KIND_WORDS.get(m.kind or '', 'principal')} {code(m.name)}"
        + (f" ({escape(m.display_name)})" if m.display_name and m.display_name != m.name else "")
        + f": {_why(m, user.email)}"
        for m in matches
    ]
    title = f"{about} is matched to {len(matches)} Databricks principal{'s' if len(matches) != 1 else ''}:"
    return paged([_section(title)], line_sections(lines), page, title)


@dataclass(frozen=True, slots=True)
class DigestNow:
    """What `/tokens digest` did: posted to `channel` (with the digest's summary), failed (`error`),
    or nothing, with no digest channel configured (`channel` None)."""

    channel: str | None
    summary: str | None = None
    error: str | None = None


WHY = {
    MatchReason.EMAIL: "the same email",
    MatchReason.ADMIN_ASSIGNED: f"assigned by an admin (`{COMMAND} owner`)",
    MatchReason.EARLIER_LOOKUP: "an earlier lookup by email (the emails no longer match: check it)",
}
KIND_WORDS = {"user": "user", "service_principal": "service principal"}


def digest_now(done: DigestNow) -> Answer:
    if done.channel is None:
        return plain(
            "The digest is not configured here: set `slack.digest_channel` in the configuration file."
        )
    if done.error is not None:
        return plain(f"The digest could not be posted to <#{done.channel}>: {escape(done.error)}")
    return plain(f"Digest posted to <#{done.channel}>: {escape(done.summary or '')}")


def outcome(message: str) -> Answer:
    """The answer to an admin's decision (`extend`, `owner`): the service's plain message."""
    return plain(safe_text(message))
