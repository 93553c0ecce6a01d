"""Slack requests with effects run once per Slack request, across processes.

Slack re-sends a request it thinks went unanswered (`X-Slack-Retry-Num`), and a signed request
replayed within the signature's 5-minute window verifies again; a `/tokens digest` must not post
three digests. Each such request claims a key in the `slackrequest` table (unique) before it runs;
the key is stable across retries and replays (the request's `trigger_id`), so a second claim
fails, in this process or in another replica. Keys older than `KEEP` are dropped: a replay is
refused by its signature's age long before.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot.models import SlackRequest

KEEP = timedelta(days=1)
MAX_KEY = 200


def claim(*, session: Session, key: str, kind: str, user_id: str, now: datetime) -> bool:
    """True when this is the first time `key` is seen (the caller goes ahead); False for a retry
    or replay of a request already claimed."""
    key = key[:MAX_KEY]
    if session.execute(select(SlackRequest.id).where(SlackRequest.key == key)).first() is not None:
        return False
    try:
        with session.begin_nested():  # two deliveries at once: the unique key lets one through
            session.add(SlackRequest(key=key, kind=kind[:40], user_id=user_id[:40], received_at=now))
            session.flush()
    except IntegrityError:
        return False
    session.execute(delete(SlackRequest).where(SlackRequest.received_at < now - KEEP))
    return True
