"""A token as the rules see it: `TokenFacts`, built by the service layer from the database, with
its approved `Exemption`s and the auto-scoping state Databricks reports.

Every datetime here is aware UTC: aware datetimes in another zone are converted, naive ones are
refused (`as_utc`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from bot.domain.deadlines import DeadlineKind

# --- autoscope_state values (raw text; unknown values are kept as they come) -------------------------------
AUTOSCOPE_DISABLED = "AUTOSCOPE_STATE_DISABLED"
AUTOSCOPE_RUNNING = "AUTOSCOPE_STATE_RUNNING"
AUTOSCOPE_COMPLETED = "AUTOSCOPE_STATE_COMPLETED"
AUTOSCOPE_BACKFILLED = "AUTOSCOPE_STATE_BACKFILLED"
AUTOSCOPE_USER_SELECTED = "AUTOSCOPE_STATE_USER_SELECTED"
AUTOSCOPE_API_NOT_COVERED = "AUTOSCOPE_STATE_API_NOT_COVERED"
KNOWN_AUTOSCOPE_STATES: frozenset[str] = frozenset(
    {
        AUTOSCOPE_DISABLED,
        AUTOSCOPE_RUNNING,
        AUTOSCOPE_COMPLETED,
        AUTOSCOPE_BACKFILLED,
        AUTOSCOPE_USER_SELECTED,
        AUTOSCOPE_API_NOT_COVERED,
    }
)


def as_utc(value: datetime, name: str) -> datetime:
    """`value` as aware UTC; a naive datetime is a bug in the caller and is refused."""
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(value).__name__}")
    tzinfo = value.tzinfo
    if tzinfo is UTC:
        return value
    if tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{name} must be an aware UTC datetime, got naive {value.isoformat()} "
            "(SQLite returns naive datetimes: attach timezone.utc)"
        )
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Exemption:
    """An approved exemption: the `kind` deadline is held off until `until`."""

    kind: DeadlineKind
    until: datetime

    def __post_init__(self) -> None:
        until = as_utc(self.until, "Exemption.until")
        if until is not self.until:
            object.__setattr__(self, "until", until)


@dataclass(frozen=True, slots=True)
class TokenFacts:
    """One token as the rules see it, built by the service layer from the database."""

    workspace: str
    token_id: str
    owner_kind: str | None  # "user", "service_principal", or None when unresolved
    owner_active: bool | None
    owner_resolved: bool
    comment: str
    created_at: datetime
    expires_at: datetime | None  # None = never
    last_used_on: datetime | None  # midnight UTC of the last-use day; None = never used
    scopes: tuple[str, ...]
    inferred_scopes: tuple[str, ...]
    autoscope_state: str | None  # raw text, e.g. "AUTOSCOPE_STATE_RUNNING"; unknown values possible
    observation_started_at: datetime | None
    enforcement_at: datetime | None  # from an auto-scoping event; beats the derived date while observing
    workspace_max_lifetime_days: int | None
    exemptions: tuple[Exemption, ...] = ()

    def __post_init__(self) -> None:
        for name in ("created_at", "expires_at", "last_used_on", "observation_started_at", "enforcement_at"):
            value = getattr(self, name)
            if value is not None and (type(value) is not datetime or value.tzinfo is not UTC):
                object.__setattr__(self, name, as_utc(value, f"TokenFacts.{name}"))
        for name in ("scopes", "inferred_scopes", "exemptions"):
            value = getattr(self, name)
            if type(value) is not tuple:
                object.__setattr__(self, name, tuple(value))


def is_observing(token: TokenFacts) -> bool:
    """True while auto-scoping is still observing the token (so `all-apis` is expected).

    That is state RUNNING, or a state tokenbot cannot read (None or unknown) with an enforcement date
    from an auto-scoping event. A known other state (COMPLETED, USER_SELECTED...) means observation is over.
    """
    state = token.autoscope_state
    if state == AUTOSCOPE_RUNNING:
        return True
    return token.enforcement_at is not None and (state is None or state not in KNOWN_AUTOSCOPE_STATES)
