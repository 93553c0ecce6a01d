"""After auto-scoping narrowed a token: one message to its owner, and the repair path.

A sync (`Token.narrowed_at`, set when the listing shows the scopes shrank or the state went
RUNNING -> COMPLETED) or an `autoscope.enforced` event (bot/services/events.py) marks a token
narrowed; either way on Databricks' own word: the listing, or the token read from Databricks
before the event is believed. `notify_narrowed` then tells its owner once: what the token had,
what it has now, and the `rare_api` scopes it lost (used in the audit log within the lookback,
not in the observation window; bot/services/usage.py), with two buttons: Restore scopes (the
existing restore decision, its modal pre-selected by `scopes_to_restore`; it adds to the scopes
Databricks lists at that moment, never to tokenbot's copy) and Looks fine (`looks_fine`: an
`accept` of the auto-scoping deadline dated the narrowing day, so it is recorded like any decision).

Delivery goes through the notification table and bot/services/outbox.py, as reminders do
(render, then deliver): one row per token with step `narrowed`, deadline kind
`autoscope_enforcement`, due date (and `due_at`) the narrowing day and the recipient from
bot/services/recipients.py; a second run finds the row and sends nothing. An owner with
several narrowed tokens gets one message listing them (up to `MAX_PER_MESSAGE` each, and a
message shows only what fits: the rest go in the next one). Narrowings older than
`NOTIFY_WITHIN` (history seen on a first sync, old events from a file) get no message, nor does a
token that was settled meanwhile (restored, scopes confirmed, accepted, revoked) or whose
recipient had a narrowing message about it within `ONE_PER`.

When: the owner's quiet hours hold the message until their morning, as they hold reminders (the
row is written by the first run after them). A narrowing is urgent when a job is failing now (a
scope the token lost was used within `FAILING_WITHIN`, by the audit log) or when auto-scoping
kept no scope at all (the token can call nothing): then the admins channel hears at once, by a
row of its own, when the owner is in quiet hours, and always for a token that can call nothing.

`notify_narrowed` is called at the end of each reminder run (bot/services/reminders.py).
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine, select
from sqlmodel import Session

from bot.db import session_scope
from bot.domain.deadlines import DeadlineKind
from bot.domain.ladder import quiet_until
from bot.domain.policy import Policy
from bot.domain.scopes import PRIVILEGED_SCOPES
from bot.models import Decision, Notification, Principal, Step, Token
from bot.services import decisions, notifications, outbox, recipients, usage
from bot.services.decisions import Actor, DeadlineRef, Outcome
from bot.services.ports import Directory, NarrowedSender, Recipient

logger = logging.getLogger(__name__)

NARROWED = Step.NARROWED  # Notification.step
KIND = str(DeadlineKind.AUTOSCOPE_ENFORCEMENT)  # Notification.deadline_kind
NOTIFY_WITHIN = timedelta(days=7)
FAILING_WITHIN = timedelta(days=7)  # a lost scope used this recently: a job is failing now
URGENT_NOTE = "urgent: {why}; its owner hears {when}"
ONE_PER = timedelta(days=30)
MAX_PER_MESSAGE = 12
SETTLING = frozenset({decisions.RESTORE, decisions.CONFIRM_SCOPES, decisions.REVOKE, decisions.ROTATE})
LIVE_STATUSES = (decisions.APPLIED, decisions.REQUESTED, decisions.APPROVED)


@dataclass(frozen=True, slots=True)
class NarrowedToken:
    """One narrowed token as its message shows it."""

    token_pk: int
    workspace: str
    token_id: str
    comment: str
    owner: str | None  # email or application id: shown to the admins channel
    narrowed_at: datetime
    previous_scopes: tuple[str, ...]  # what it had; empty = full access
    scopes: tuple[str, ...]  # what it has now
    rare_lost: Mapping[str, date]  # rare_api scopes it lost -> last used
    usage_known: bool  # the workspace's audit log is read (audit_warehouse_id)
    unmapped_services: tuple[str, ...] = ()  # called, but no known scope covers them
    lookback_days: int = 180
    note: str | None = None  # why the admins channel gets it
    notification_id: int | None = None  # the row it is sent for; None in a preview
    # Opaque: what its buttons carry. Only the Slack layer makes it (bot/slack/references.py).
    reference: str = ""
    # Scopes it lost that were used within FAILING_WITHIN -> that day: a job is failing now.
    failing: Mapping[str, date] = field(default_factory=dict)

    @property
    def lost(self) -> tuple[str, ...]:
        now = set(self.scopes)
        return tuple(s for s in self.previous_scopes if s not in now)

    @property
    def calls_nothing(self) -> bool:
        """Auto-scoping kept no scope: every call with the token fails."""
        return not self.scopes

    @property
    def urgent(self) -> bool:
        return self.calls_nothing or bool(self.failing)


@dataclass(frozen=True, slots=True)
class NarrowedMessage:
    recipient: Recipient
    tokens: tuple[NarrowedToken, ...]
    now: datetime


@dataclass
class NarrowingSummary:
    planned: int = 0
    sent_messages: int = 0
    sent_notifications: int = 0
    failed: int = 0
    held_for_quiet_hours: int = 0  # owners told after their quiet hours
    previews: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# the run


def notify_narrowed(
    *,
    engine: Engine,
    policy: Policy,
    directory: Directory,
    sender: NarrowedSender,
    admin_channel: str | None,
    now: datetime,
    dry_run: bool = False,
) -> NarrowingSummary:
    """Message the owner of every newly narrowed token, once. `dry_run` renders and records nothing."""
    summary = NarrowingSummary()

    def planned_in(session: Session) -> list[tuple[Token, Recipient]]:
        return plan(
            session=session,
            policy=policy,
            directory=directory,
            admin_channel=admin_channel,
            now=now,
            summary=summary,
        )

    if dry_run:
        with Session(engine) as session:
            planned = planned_in(session)
            summary.planned = len(planned)
            by_recipient: dict[str, list[tuple[Token, Recipient]]] = defaultdict(list)
            for token, recipient in planned:
                by_recipient[recipient.slack_id].append((token, recipient))
            for items in by_recipient.values():
                tokens = tuple(
                    notice(
                        session=session,
                        policy=policy,
                        token=token,
                        notification_id=None,
                        note=recipient.reason,
                        now=now,
                    )
                    for token, recipient in items
                )
                message = NarrowedMessage(items[0][1], tokens, now)
                summary.previews.append(sender.preview_narrowed(message))
            session.rollback()
        return summary
    with session_scope(engine) as session:
        summary.planned = _record(session, planned_in(session), now)
    _deliver(engine, policy, sender, now, summary)
    return summary


def plan(
    *,
    session: Session,
    policy: Policy,
    directory: Directory,
    admin_channel: str | None,
    now: datetime,
    summary: NarrowingSummary | None = None,
) -> list[tuple[Token, Recipient]]:
    """The narrowed tokens whose owner has not heard about it yet, with who should hear now:
    the owner outside their quiet hours, and the admins channel at once for an urgent one."""
    tokens = list(
        session.execute(
            select(Token).where(
                Token.narrowed_at.is_not(None),
                Token.narrowed_at >= now - NOTIFY_WITHIN,
                Token.gone_at.is_(None),
            )
        ).scalars()
    )
    if not tokens:
        return []
    pks = [t.id for t in tokens]
    told = _told(session, pks)
    settled = _settled(session, pks)
    principals = recipients.load_principals(
        session=session, keys={(t.workspace, t.owner_id or "") for t in tokens}
    )
    window = policy.quiet_window()
    planned = []
    for token in sorted(tokens, key=lambda t: (t.narrowed_at, t.workspace, t.token_id)):
        day = token.narrowed_at.date()
        heard = told.get(token.id, {})
        if any(_within(heard[who], day) for who in heard if who != admin_channel):
            continue  # its owner was told (and the admins with them, if it was urgent)
        if any(
            (when is not None and when >= token.narrowed_at) or about == day
            for when, about in settled.get(token.id, ())
        ):
            continue
        recipient = recipients.recipient_for(
            principal=principals.get((token.workspace, token.owner_id or "")),
            directory=directory,
            admin_channel=admin_channel,
            now=now,
        )
        if recipient is None:
            logger.warning(
                "narrowed token %s in %s: its owner cannot be reached and slack.admin_channel is not set",
                token.token_id,
                token.workspace,
            )
            continue
        asleep = not recipient.admins_channel and quiet_until(now, recipient.tz, window) is not None
        if not _within(heard.get(recipient.slack_id, ()), day):
            if not asleep:
                planned.append((token, recipient))
            elif summary is not None:
                summary.held_for_quiet_hours += 1
        if (
            admin_channel
            and not recipient.admins_channel
            and (asleep or not token.scopes)
            and not _within(heard.get(admin_channel, ()), day)
        ):
            why = _urgency(session, policy, token, now)
            if why is not None:
                note = URGENT_NOTE.format(why=why, when="in their morning" if asleep else "now too")
                planned.append((token, Recipient(admin_channel, admins_channel=True, reason=note)))
    session.flush()  # recipient lookups cached on principal rows
    return planned


def _urgency(session: Session, policy: Policy, token: Token, now: datetime) -> str | None:
    """Why the narrowing cannot wait for anyone's morning, or None."""
    if not token.scopes:
        return "it can call nothing"
    if _failing(session, policy, token, now):
        return "a job is failing now"
    return None


def _failing(session: Session, policy: Policy, token: Token, now: datetime) -> dict[str, date]:
    """Scopes the token does not have now but used within FAILING_WITHIN -> the day last used."""
    current = set(token.scopes or ())
    if "all-apis" in current:
        return {}
    used = usage.scopes_used_by(session=session, policy=policy, now=now, token=token)
    return {
        scope: last.date()
        for scope, last in sorted(used.items())
        if scope not in current and last >= now - FAILING_WITHIN
    }


def _told(session: Session, pks: list[int]) -> dict[int, dict[str, list[date]]]:
    """The narrowing days each token's recipients had a message about."""
    found: dict[int, dict[str, list[date]]] = defaultdict(lambda: defaultdict(list))
    rows = session.execute(
        select(Notification.token_pk, Notification.recipient, Notification.due_date).where(
            Notification.token_pk.in_(pks), Notification.step == NARROWED
        )
    )
    for token_pk, recipient, due_date in rows:
        found[token_pk][recipient].append(due_date)
    return found


def _within(sent_days: Iterable[date], day: date) -> bool:
    """A message about a narrowing within ONE_PER before `day` (or about that day)."""
    return any(day - ONE_PER <= sent <= day for sent in sent_days)


def _settled(session: Session, pks: list[int]) -> dict[int, list[tuple[datetime | None, date | None]]]:
    """Decisions that make a narrowing message pointless: (when, or the auto-scoping day an
    accept was about)."""
    found: dict[int, list[tuple[datetime | None, date | None]]] = defaultdict(list)
    rows = session.execute(
        select(Decision.token_pk, Decision.action, Decision.parameters, Decision.created_at).where(
            Decision.token_pk.in_(pks),
            Decision.status.in_(LIVE_STATUSES),
            Decision.action.in_(SETTLING | {decisions.ACCEPT}),
        )
    )
    for token_pk, action, parameters, created_at in rows:
        parameters = parameters or {}
        if parameters.get("dry_run"):
            continue
        if action != decisions.ACCEPT:
            found[token_pk].append((created_at, None))
        elif parameters.get("deadline_kind") == KIND:
            found[token_pk].append((None, _day(parameters)))
    return found


def _day(parameters: Mapping) -> date | None:
    try:
        return date.fromisoformat(str(parameters.get("due_date"))[:10])
    except ValueError:
        return None


def _record(session: Session, planned: list[tuple[Token, Recipient]], now: datetime) -> int:
    written = 0
    for token, recipient in planned:
        row = Notification(
            token_pk=token.id,
            deadline_kind=KIND,
            due_date=token.narrowed_at.date(),
            due_at=token.narrowed_at,
            step=NARROWED,
            recipient=recipient.slack_id,
            note=recipient.reason,
            created_at=now,
        )
        if notifications.add_once(session, row):
            written += 1
        else:
            logger.info("narrowed message for token %s already recorded by another run", token.id)
    return written


NARROWED_ROWS = Notification.step == NARROWED


def _deliver(
    engine: Engine, policy: Policy, sender: NarrowedSender, now: datetime, summary: NarrowingSummary
) -> None:
    """Up to MAX_PER_MESSAGE tokens a message, one recipient after the other (bot/services/outbox.py)."""
    run_id = uuid.uuid4().hex
    with session_scope(engine) as session:
        outbox.release_stale_claims(session, now, NARROWED_ROWS)
        waiting = outbox.waiting_recipients(session, NARROWED_ROWS)

    def render(session: Session, rows: list[Notification]):
        return message_for(session=session, policy=policy, rows=rows, now=now)

    def deliver(recipient: str) -> outbox.Sent:
        return outbox.deliver_to(
            engine,
            recipient,
            run_id=run_id,
            now=now,
            which=NARROWED_ROWS,
            render=render,
            send=sender.send_narrowed,
            skipped_because="no longer narrowed, gone, or already settled",
            batch=MAX_PER_MESSAGE,
        )

    sent = outbox.Dispatcher(deliver, name="narrowed messages").deliver_all(waiting, workers=1)
    summary.sent_messages += sent.messages
    summary.sent_notifications += sent.notifications
    summary.failed += sent.failed


def message_for(
    *, session: Session, policy: Policy, rows: list[Notification], now: datetime
) -> tuple[NarrowedMessage | None, list[Notification]]:
    """The message of these notification rows (one recipient), and the rows no longer worth it."""
    tokens, skipped = [], []
    for row in rows:
        token = session.get(Token, row.token_pk)
        if token is None or token.narrowed_at is None or token.gone_at is not None:
            skipped.append(row)
            continue
        tokens.append(
            notice(
                session=session, policy=policy, token=token, notification_id=row.id, note=row.note, now=now
            )
        )
    if not tokens:
        return None, skipped
    recipient = rows[0].recipient
    target = Recipient(
        recipient,
        tz=recipients.tz_of(session=session, slack_id=recipient),
        admins_channel=recipient.startswith(("C", "G")),
    )
    return NarrowedMessage(target, tuple(tokens), now), skipped


def notice(
    *,
    session: Session,
    policy: Policy,
    token: Token,
    notification_id: int | None,
    note: str | None,
    now: datetime,
) -> NarrowedToken:
    rare = usage.rare_scopes_of(session=session, policy=policy, now=now, token=token)
    current = set(token.scopes or ())
    owner = session.execute(
        select(Principal).where(
            Principal.workspace == token.workspace, Principal.principal_id == token.owner_id
        )
    ).scalar_one_or_none()
    return NarrowedToken(
        notification_id=notification_id,
        token_pk=token.id,
        workspace=token.workspace,
        token_id=token.token_id,
        comment=token.comment or "",
        owner=(owner.email or owner.application_id or owner.display_name) if owner else token.owner_id,
        narrowed_at=token.narrowed_at or now,
        previous_scopes=tuple(token.previous_scopes or ()),
        scopes=tuple(token.scopes or ()),
        rare_lost={scope: day for scope, day in rare.items() if scope not in current},
        usage_known=usage.has_usage(session=session, workspace=token.workspace),
        unmapped_services=tuple(
            usage.unmapped_services(
                session=session,
                workspace=token.workspace,
                principal_id=token.owner_id or "",
                token_id=token.token_id,
            )
        ),
        lookback_days=policy.usage_lookback_days,
        note=note,
        failing=_failing(session, policy, token, now),
    )


# ---------------------------------------------------------------------------------------------
# the buttons


def scopes_to_restore(*, session: Session, policy: Policy, token: Token, now: datetime) -> list[str]:
    """What the Restore scopes modal pre-selects: the rare_api scopes the token lost plus the
    other lost scopes that need no approval; only when there are none, every lost scope (so
    `all-apis` shows, which an admin must approve). A token narrowed to no scope at all gets
    every scope the audit log saw it use (the restore checks each choice again)."""
    current = set(token.scopes or ())
    if not current:
        used = usage.scopes_used_by(session=session, policy=policy, now=now, token=token)
        if used:
            return sorted(used)
    lost = [s for s in (token.previous_scopes or ()) if s not in current]
    rare = [
        s
        for s in usage.rare_scopes_of(session=session, policy=policy, now=now, token=token)
        if s not in current
    ]
    chosen = sorted(set(rare) | {s for s in lost if s not in PRIVILEGED_SCOPES})
    return chosen or sorted(lost)


def looks_fine(
    *, session: Session, actor: Actor, token_pk: int, fallback: DeadlineRef | None = None
) -> Outcome:
    """The owner says the narrowed token works: an `accept` of the auto-scoping deadline dated
    the narrowing day (so the refusals, duplicates and records are the decisions service's)."""
    token = session.get(Token, token_pk)
    if token is not None and token.narrowed_at is not None:
        deadline = DeadlineRef(kind=KIND, due_at=token.narrowed_at)
    else:
        deadline = fallback or DeadlineRef(kind=KIND, due_at=datetime(1970, 1, 1, tzinfo=UTC))
    outcome = decisions.accept(session=session, actor=actor, token_pk=token_pk, deadline=deadline)
    if outcome.status == decisions.APPLIED and token is not None:
        scopes = ", ".join(token.scopes or ()) or "full access"
        label = f"token {token.token_id[:8]} in {token.workspace}"
        message = (
            f"Noted: {label} keeps {scopes}. If something breaks later, Restore scopes stays on the message."
        )
        outcome = replace(outcome, message=message)
    return outcome
