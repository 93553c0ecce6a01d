"""Who hears about a token: its owner in Slack, or the admins channel with the reason.

Slack lookups are cached on the `principal` row and re-checked weekly; a user Slack says is gone
is forgotten at once (`forget_slack_user`). Nobody is silently dropped: an owner who cannot be
reached is reported to the admins channel, saying why.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import select, tuple_
from sqlmodel import Session

from bot.models import Principal
from bot.services.ports import Directory, Recipient

RECHECK_AFTER = timedelta(days=7)


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
    return principal.slack_checked_at is not None and now - principal.slack_checked_at < RECHECK_AFTER


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
