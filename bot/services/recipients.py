"""Who hears about a token: its owner in Slack, or the admins channel with the reason.

A Databricks user is matched to a Slack user by email, without case, three ways: the whole
directory at once (`match_directory`, after a sync), the Slack user themself on first use
(`link_slack_user`: `/tokens`, the App Home, a click), and one lookup per owner in a reminder run
for the few the others missed. Matches are cached on the `principal` row and re-checked weekly; a
user Slack says is gone is forgotten at once (`forget_slack_user`). Nobody is silently dropped: an
owner who cannot be reached is reported to the admins channel, saying why.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, tuple_
from sqlmodel import Session

from bot.models import Principal
from bot.services.ports import Directory, Recipient, SlackUser
from bot.services.vocabulary import MatchReason

RECHECK_AFTER = timedelta(days=7)
USERS_PER_PAGE = 200  # users.list's page size (Slack's recommended limit)
NOT_IN_DIRECTORY = "not found in the Slack directory"  # until a lookup by email says more


def databricks_emails(email: str | None, domains_map: Mapping[str, str]) -> dict[str, MatchReason]:
    """The Databricks emails (lower case) a Slack profile email stands for, and how."""
    if not email or "@" not in email:
        return {}
    email = email.strip().lower()
    found = {email: MatchReason.EMAIL}
    name, _, domain = email.rpartition("@")
    if domain in domains_map:
        found.setdefault(f"{name}@{domains_map[domain]}", MatchReason.MAPPED_DOMAIN)
    return found


def slack_emails(email: str, domains_map: Mapping[str, str]) -> list[str]:
    """The Slack emails that may stand for a Databricks email: itself, then each mapped domain."""
    email = email.strip().lower()
    name, _, domain = email.rpartition("@")
    return [email] + [f"{name}@{slack}" for slack, databricks in domains_map.items() if databricks == domain]


def reachable(user: SlackUser | None) -> bool:
    """A person tokenbot can talk to: not deactivated, not a bot."""
    return user is not None and not user.deleted and not user.is_bot


def _link(principal: Principal, user: SlackUser, now: datetime) -> None:
    principal.slack_user_id, principal.slack_tz, principal.slack_missing_reason = user.id, user.tz, None
    principal.slack_checked_at = now


def link_slack_user(
    *, session: Session, user: SlackUser, domains_map: Mapping[str, str], now: datetime
) -> list[Principal]:
    """Match this Slack user to every Databricks user with their email (the first time they use
    tokenbot); the match is kept on the principal rows. Returns the principals newly matched."""
    emails = databricks_emails(user.email, domains_map)
    if not reachable(user) or not emails:
        return []
    linked = []
    for principal in session.execute(
        select(Principal).where(Principal.kind == "user", func.lower(Principal.email).in_(list(emails)))
    ).scalars():
        if principal.slack_user_id == user.id:
            continue
        exact = emails.get((principal.email or "").lower()) == MatchReason.EMAIL
        if principal.slack_user_id and not exact:
            continue  # someone has the very email; a mapped domain does not take it from them
        _link(principal, user, now)
        linked.append(principal)
    session.flush()
    return linked


@dataclass(frozen=True, slots=True)
class DirectoryMatch:
    users: int = 0  # Slack users read
    matched: int = 0  # Databricks users now matched to a Slack user
    unreachable: int = 0  # whose email belongs to a deactivated Slack user or a bot
    missed: int = 0  # not found: left to a lookup by email in the next reminder run


def match_directory(
    *, session: Session, users: Iterable[SlackUser], domains_map: Mapping[str, str], now: datetime
) -> DirectoryMatch:
    """Match every Databricks user to the Slack directory at once (an exact email wins over a
    mapped domain; an active person over a deactivated account or a bot), and refresh the time
    zones of admin-assigned owners."""
    by_email: dict[str, tuple[tuple[bool, bool], SlackUser]] = {}
    by_id: dict[str, SlackUser] = {}
    count = 0
    for user in users:
        count += 1
        by_id[user.id] = user
        for email, reason in databricks_emails(user.email, domains_map).items():
            rank = (reachable(user), reason == MatchReason.EMAIL)
            if email not in by_email or rank > by_email[email][0]:
                by_email[email] = (rank, user)
    matched = unreachable = missed = 0
    for principal in session.execute(
        select(Principal).where(or_(Principal.kind == "user", Principal.owner_slack_id.is_not(None)))
    ).scalars():
        if principal.kind == "service_principal":
            owner = by_id.get(principal.owner_slack_id or "")
            if owner is not None:
                principal.slack_tz = owner.tz if reachable(owner) else None
                principal.slack_checked_at = now
                principal.slack_missing_reason = (
                    None if reachable(owner) else "the assigned owner is deactivated in Slack"
                )
            continue
        if not principal.email:
            continue
        found = by_email.get(principal.email.lower())
        if found is None:
            missed += 1
            if principal.slack_checked_at is None:  # left to a lookup; no reason to read it all again
                principal.slack_missing_reason = NOT_IN_DIRECTORY
        elif reachable(found[1]):
            _link(principal, found[1], now)
            matched += 1
        else:  # as a lookup would say: Slack knows no active user by this email
            principal.slack_user_id, principal.slack_tz, principal.slack_checked_at = None, None, now
            principal.slack_missing_reason = f"no active Slack user has the email {principal.email}"
            unreachable += 1
    session.flush()
    return DirectoryMatch(users=count, matched=matched, unreachable=unreachable, missed=missed)


def directory_worth_reading(*, session: Session, now: datetime) -> bool:
    """True when reading the whole directory (one call per 200 users) costs fewer Slack calls
    than looking up, one by one, the Databricks users whose match is missing or due a re-check."""
    due = session.execute(
        select(func.count())
        .select_from(Principal)
        .where(
            Principal.kind == "user",
            Principal.email.is_not(None),
            Principal.active.is_not(False),
            or_(
                Principal.slack_checked_at < now - RECHECK_AFTER,
                and_(
                    Principal.slack_checked_at.is_(None),
                    or_(
                        Principal.slack_missing_reason.is_(None),
                        Principal.slack_missing_reason != NOT_IN_DIRECTORY,
                    ),
                ),
            ),
        )
    ).scalar_one()
    users = session.execute(
        select(func.count()).select_from(Principal).where(Principal.kind == "user")
    ).scalar_one()
    return due > math.ceil(users / USERS_PER_PAGE)


def matches_of(
    *, session: Session, user_id: str, email: str | None, domains_map: Mapping[str, str]
) -> list[tuple[Principal, MatchReason]]:
    """The principals this Slack user is matched to, and why (for `/tokens whois`)."""
    emails = databricks_emails(email, domains_map)
    found = []
    for principal in session.execute(
        select(Principal)
        .where(or_(Principal.slack_user_id == user_id, Principal.owner_slack_id == user_id))
        .order_by(Principal.workspace, Principal.principal_id)
    ).scalars():
        if principal.owner_slack_id == user_id:
            reason = MatchReason.ADMIN_ASSIGNED
        else:
            reason = emails.get((principal.email or "").lower(), MatchReason.EARLIER_LOOKUP)
        found.append((principal, reason))
    return found


def load_principals(*, session: Session, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Principal]:
    """Principal rows by (workspace, principal id), in a few queries however many owners there are."""
    keys = list(set(keys))
    found: dict[tuple[str, str], Principal] = {}
    for start in range(0, len(keys), 500):
        batch = keys[start : start + 500]
        rows = session.execute(
            select(Principal).where(tuple_(Principal.workspace, Principal.principal_id).in_(batch))
        ).scalars()
        found.update({(p.workspace, p.principal_id): p for p in rows})
    return found


def recipient_for(
    *,
    principal: Principal | None,
    directory: Directory,
    admin_channel: str | None,
    now: datetime,
) -> Recipient | None:
    """The owner's Slack user, or the admins channel (None when no admins channel is configured)."""

    def admins(reason: str) -> Recipient | None:
        return Recipient(admin_channel, admins_channel=True, reason=reason) if admin_channel else None

    if principal is None or principal.kind is None:
        return admins("the owner no longer exists in Databricks")
    if principal.kind == "service_principal":
        if not principal.owner_slack_id:
            return admins("service principal with no owner assigned")
        return _assigned_owner(principal, directory, now) or admins(
            "the assigned owner is deactivated in Slack"
        )
    if principal.active is False:
        return admins("the owner is deactivated in Databricks")
    return _user_owner(principal, directory, now) or admins(
        principal.slack_missing_reason or "the owner is not in Slack"
    )


def _fresh(principal: Principal, now: datetime) -> bool:
    # Stale exactly when `directory_worth_reading` counts it due (checked more than a week ago), so
    # the directory read after a sync re-checks it before a reminder run looks it up alone.
    return principal.slack_checked_at is not None and now - principal.slack_checked_at <= RECHECK_AFTER


def _user_owner(principal: Principal, directory: Directory, now: datetime) -> Recipient | None:
    if _fresh(principal, now):
        if principal.slack_user_id:
            return Recipient(principal.slack_user_id, tz=principal.slack_tz or "UTC")
        return None
    if not principal.email:
        principal.slack_missing_reason = "the owner has no email in Databricks"
        principal.slack_checked_at = now
        return None
    user = directory.lookup_email(principal.email)
    principal.slack_checked_at = now
    if user is None or user.deleted:
        principal.slack_user_id, principal.slack_tz = None, None
        principal.slack_missing_reason = f"no active Slack user has the email {principal.email}"
        return None
    principal.slack_user_id, principal.slack_tz, principal.slack_missing_reason = user.id, user.tz, None
    return Recipient(user.id, tz=user.tz)


def _assigned_owner(principal: Principal, directory: Directory, now: datetime) -> Recipient | None:
    if _fresh(principal, now) and principal.slack_tz:
        return Recipient(principal.owner_slack_id, tz=principal.slack_tz)
    user = directory.user_info(principal.owner_slack_id)
    principal.slack_checked_at = now
    if user is None or user.deleted:
        principal.slack_missing_reason = "the assigned owner is deactivated in Slack"
        return None
    principal.slack_tz, principal.slack_missing_reason = user.tz, None
    return Recipient(principal.owner_slack_id, tz=user.tz)


def forget_slack_user(*, session: Session, slack_id: str, reason: str, now: datetime) -> None:
    """Slack said this user is gone: stop using the cached lookup for every principal mapped to it."""
    for principal in session.execute(
        select(Principal).where(
            (Principal.slack_user_id == slack_id) | (Principal.owner_slack_id == slack_id)
        )
    ).scalars():
        if principal.slack_user_id == slack_id:
            principal.slack_user_id = None
        principal.slack_missing_reason = reason
        principal.slack_checked_at = now
        principal.slack_tz = None
    session.flush()


def tz_of(*, session: Session, slack_id: str) -> str:
    """The time zone last seen for this Slack user (for dates in messages), else UTC."""
    tz = session.execute(
        select(Principal.slack_tz)
        .where(
            (Principal.slack_user_id == slack_id) | (Principal.owner_slack_id == slack_id),
            Principal.slack_tz.is_not(None),
        )
        .limit(1)
    ).scalar()
    return tz or "UTC"


class Unreachable:
    """A directory that fails at once: Slack did not answer a lookup in this run."""

    def __init__(self, error: Exception) -> None:
        self._error = error

    def lookup_email(self, email: str):
        raise self._error

    def user_info(self, user_id: str):
        raise self._error
