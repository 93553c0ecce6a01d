"""Read-only look-ups the Slack listeners need: which token an id names, where a token's messages
are, what a modal pre-selects. The listener owns the session (one per call); nothing here writes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlmodel import Session

from bot.domain.policy import Policy
from bot.models import Notification, Principal, Token, Workspace
from bot.services import narrowing, usage


def tokens_by_id(
    *, session: Session, prefix: str, workspace: str | None, owner: str | None, limit: int
) -> list[Token]:
    """Tokens whose id starts with `prefix` (in `workspace` when given; with `owner`, only that
    Slack user's tokens), by workspace and id, at most `limit`."""
    query = select(Token).where(Token.token_id.startswith(prefix, autoescape=True))
    if workspace:
        query = query.where(Token.workspace == workspace)
    if owner:
        query = query.join(
            Principal, and_(Principal.workspace == Token.workspace, Principal.principal_id == Token.owner_id)
        ).where(or_(Principal.slack_user_id == owner, Principal.owner_slack_id == owner))
    return list(session.execute(query.order_by(Token.workspace, Token.token_id).limit(limit)).scalars())


def workspace_names(*, session: Session) -> set[str]:
    """Every workspace tokenbot has synced."""
    return set(session.execute(select(Workspace.name)).scalars())


def message_places(*, session: Session, token_pk: int) -> list[tuple[str, str]]:
    """(channel, ts) of every sent notification that lists the token."""
    rows = session.execute(
        select(Notification.channel, Notification.message_ts)
        .where(Notification.token_pk == token_pk, Notification.message_ts.is_not(None))
        .distinct()
    ).all()
    return [(channel, ts) for channel, ts in rows]


def rare_scopes(*, session: Session, policy: Policy, now: datetime, token_pk: int) -> list[str]:
    """The token's rarely used scopes (audit log), for the Confirm scopes modal; none for a token
    tokenbot does not know."""
    token = session.get(Token, token_pk)
    if token is None:
        return []
    return list(usage.rare_scopes_of(session=session, policy=policy, now=now, token=token))


def lost_scopes(*, session: Session, policy: Policy, now: datetime, token_pk: int) -> list[str]:
    """What the Restore scopes modal pre-selects (narrowing.scopes_to_restore); none for a token
    tokenbot does not know."""
    token = session.get(Token, token_pk)
    if token is None:
        return []
    return narrowing.scopes_to_restore(session=session, policy=policy, token=token, now=now)
