"""The one source of time: every 'now' in tokenbot comes from here, as an aware UTC datetime.

Tests freeze it with freezegun; nothing else in the code calls `datetime.now()` directly.
"""

import email.utils
from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


def from_ms(ms: int | None) -> datetime | None:
    """Databricks times are milliseconds since the epoch; -1, 0 or None mean 'never'."""
    if ms is None or ms <= 0:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def to_ms(moment: datetime | None) -> int:
    return -1 if moment is None else int(moment.timestamp() * 1000)


def from_http_date(value: str | None) -> datetime | None:
    """An HTTP `Date` header ("Mon, 30 Nov 2026 06:16:36 GMT") as aware UTC; None when absent or malformed."""
    try:
        parsed = email.utils.parsedate_to_datetime(value or "")
    except (TypeError, ValueError):
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
